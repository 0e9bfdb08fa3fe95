import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thrown by ``DedicatedThreadExecutor/run(_:)`` when the executor was shut down
/// before the closure could be submitted.
public struct ExecutorShutdownError: Error, CustomStringConvertible, Sendable {
    /// The name of the executor that was shut down.
    public let executorName: String

    /// `executor '<name>' has been shut down`.
    public var description: String {
        "executor '\(executorName)' has been shut down"
    }
}

/// An executor that owns one dedicated OS thread and runs every job enqueued on it
/// on that thread, one at a time, in FIFO order.
///
/// Use it for actors that own a blocking, non-thread-safe C handle (for example a
/// hiredis context): make the actor's executor a `DedicatedThreadExecutor`, and every
/// isolated method of the actor runs on the dedicated thread, so blocking calls never
/// occupy a thread of Swift's cooperative pool and the C handle is only ever touched
/// from one thread.
///
/// ```swift
/// actor Session {
///     let executor = DedicatedThreadExecutor(name: "session")
///     nonisolated var unownedExecutor: UnownedSerialExecutor {
///         executor.asUnownedSerialExecutor()
///     }
/// }
/// ```
///
/// The thread sleeps on a condition variable while the queue is empty. It keeps the
/// executor alive until ``shutdown()`` is called; call it when the owner goes away
/// (for example from the owning actor's `deinit`).
///
/// The executor is also a `TaskExecutor`, so it can be used with
/// `withTaskExecutorPreference(_:operation:)`, and ``run(_:)`` runs a single blocking
/// closure on the thread and resumes the caller with its result.
public final class DedicatedThreadExecutor: SerialExecutor, TaskExecutor {
    private enum Work {
        case job(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    private struct State {
        var queue: [Work] = []
        var head = 0
        var threadRunning = false
        var stopRequested = false
        var thread: pthread_t?
        /// Incremented each time a worker thread exits; lets ``shutdown()`` wait.
        var exits = 0

        var isEmpty: Bool { head == queue.count }

        mutating func push(_ work: Work) {
            queue.append(work)
        }

        mutating func pop() -> Work? {
            guard head < queue.count else { return nil }
            let work = queue[head]
            head += 1
            if head == queue.count {
                queue.removeAll(keepingCapacity: queue.count <= 4096)
                head = 0
            } else if head >= 1024, head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return work
        }
    }

    /// The name given to the dedicated thread.
    public let name: String

    // The queue and flags live in a Mutex, so their thread safety is checked by the
    // compiler. The NSConditions are only used to sleep and wake up: the worker checks
    // the queue while holding `workAvailable`'s lock, and producers take that lock
    // before signalling, so no wake-up is lost.
    private let state = Mutex(State())
    private let workAvailable = NSCondition()
    private let threadExited = NSCondition()

    /// Creates the executor and starts its dedicated thread.
    ///
    /// - Parameter name: The name of the thread (visible in debuggers and `top -H`;
    ///   Linux keeps its first 15 bytes).
    public init(name: String) {
        self.name = name
        state.withLock { state in
            state.threadRunning = true
        }
        startThread()
    }

    /// Enqueues a job; it runs on the dedicated thread after every job enqueued before it.
    ///
    /// If the executor has been shut down, a new dedicated thread is started for the job,
    /// so work enqueued late (for example a call on an actor whose executor was shut down)
    /// is still executed instead of hanging forever.
    public func enqueue(_ job: consuming ExecutorJob) {
        submit(.job(UnownedJob(job)))
    }

    /// Returns an unowned reference to this executor, for an actor's `unownedExecutor`.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Returns an unowned reference to this executor as a task executor.
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// Whether the calling code runs on this executor's dedicated thread.
    public var isCurrentThread: Bool {
        let current = pthread_self()
        return state.withLock { state in
            guard let thread = state.thread else { return false }
            return pthread_equal(thread, current) != 0
        }
    }

    /// The number of jobs and closures queued and not yet started.
    public var pendingJobCount: Int {
        state.withLock { $0.queue.count - $0.head }
    }

    /// Crashes unless the caller runs on the dedicated thread; used by
    /// `Actor.assumeIsolated` and `preconditionIsolated`.
    public func checkIsolated() {
        precondition(isCurrentThread, "not running on the dedicated thread of executor '\(name)'")
    }

    /// Runs a blocking closure on the dedicated thread (after the jobs already queued)
    /// and resumes the caller with its result or error.
    ///
    /// The caller is suspended, not blocked, while the closure runs.
    ///
    /// - Throws: Whatever `body` throws, or ``ExecutorShutdownError`` if ``shutdown()``
    ///   was called before this call.
    ///
    /// - Parameter queued: runs on the caller's thread once the job is in the
    ///   queue (not if it was refused): the place to wake the job running now,
    ///   so that the new one does not wait behind it.
    public func run<T: Sendable>(
        _ body: @Sendable @escaping () throws -> T, queued: (() -> Void)? = nil
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = submit(.closure({ continuation.resume(with: Result { try body() }) }),
                                  rejectIfStopped: true)
            if accepted {
                queued?()
            } else {
                continuation.resume(throwing: ExecutorShutdownError(executorName: name))
            }
        }
    }

    /// Enqueues a closure to run on the dedicated thread and returns at once
    /// (fire and forget). Runs even after ``shutdown()`` (a new thread starts for it).
    public func execute(_ body: @escaping @Sendable () -> Void) {
        submit(.closure(body))
    }

    /// Stops the dedicated thread after it has run every job already enqueued.
    ///
    /// When called from another thread, waits until the thread has drained the queue and
    /// exited. When called from the dedicated thread itself (for example from a job),
    /// returns at once and the thread exits after the current job and the rest of the queue.
    /// Calling it more than once is harmless.
    public func shutdown() {
        let (wasRunning, exitsBefore) = state.withLock { state in
            state.stopRequested = true
            return (state.threadRunning, state.exits)
        }
        workAvailable.lock()
        workAvailable.broadcast()
        workAvailable.unlock()
        guard wasRunning, !isCurrentThread else { return }
        threadExited.lock()
        while state.withLock({ $0.exits == exitsBefore && $0.threadRunning }) {
            threadExited.wait()
        }
        threadExited.unlock()
    }

    // MARK: - Private

    /// Queues `work`; restarts the thread if it has exited. Returns false (and drops
    /// nothing) only when `rejectIfStopped` is set and shutdown was requested.
    @discardableResult
    private func submit(_ work: Work, rejectIfStopped: Bool = false) -> Bool {
        let outcome: (accepted: Bool, startThread: Bool) = state.withLock { state in
            if rejectIfStopped, state.stopRequested { return (false, false) }
            state.push(work)
            if state.threadRunning { return (true, false) }
            state.threadRunning = true
            state.stopRequested = false
            return (true, true)
        }
        guard outcome.accepted else { return false }
        if outcome.startThread {
            startThread()
        } else {
            workAvailable.lock()
            workAvailable.signal()
            workAvailable.unlock()
        }
        return true
    }

    private func startThread() {
        let thread = Thread { [self] in
            self.workerLoop()
        }
        thread.start()
    }

    /// Names the calling OS thread (as shown by debuggers and `top -H`).
    private static func setCurrentThreadName(_ name: String) {
        #if os(Linux)
        // Swift's Glibc module does not declare pthread_setname_np (a GNU extension), and
        // Foundation's Thread.name only reaches the OS thread if set after start() returned,
        // so look the function up. Linux keeps at most 15 bytes of a thread name.
        typealias SetName = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32
        guard let symbol = dlsym(nil, "pthread_setname_np") else { return }
        var bytes = Array(name.utf8.prefix(15))
        while !bytes.isEmpty, String(validating: bytes, as: UTF8.self) == nil { bytes.removeLast() }
        _ = unsafeBitCast(symbol, to: SetName.self)(pthread_self(), String(decoding: bytes, as: UTF8.self))
        #elseif canImport(Darwin)
        pthread_setname_np(name)
        #endif
    }

    private func workerLoop() {
        let me = pthread_self()
        Self.setCurrentThreadName(name)
        state.withLock { $0.thread = me }
        let serial = asUnownedSerialExecutor()
        let task = asUnownedTaskExecutor()
        while true {
            var next: Work?
            var exit = false
            workAvailable.lock()
            while true {
                (next, exit) = state.withLock { state -> (Work?, Bool) in
                    if let work = state.pop() { return (work, false) }
                    if state.stopRequested {
                        state.threadRunning = false
                        state.thread = nil
                        state.exits += 1
                        return (nil, true)
                    }
                    return (nil, false)
                }
                if next != nil || exit { break }
                workAvailable.wait()
            }
            workAvailable.unlock()
            if exit { break }
            switch next! {
            case .job(let job):
                job.runSynchronously(isolatedTo: serial, taskExecutor: task)
            case .closure(let body):
                body()
            }
        }
        threadExited.lock()
        threadExited.broadcast()
        threadExited.unlock()
    }
}
