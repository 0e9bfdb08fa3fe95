#define _GNU_SOURCE
#include <signal.h>
#include <dlfcn.h>
/* valgrind 3.19 writes into the mask passed to rt_sigsuspend; libdispatch passes one in read-only memory. */
int sigsuspend(const sigset_t *mask) {
    static int (*real)(const sigset_t *) = 0;
    sigset_t copy = *mask;
    if (!real) real = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
    return real(&copy);
}
