import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error starting or waiting for a child process.
public struct ChildProcessError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// Starting and reaping child processes with `posix_spawn`: the one place the
/// project spawns programs (the local `redis-server`, the benchmark's children).
///
/// Every child starts with stdin on `/dev/null`, none of this process's other file
/// descriptors (no leaked sockets), an empty signal mask and default handlers for
/// SIGPIPE, SIGTERM, SIGINT, SIGHUP and SIGCHLD: the calling thread may block signals
/// (Dispatch worker threads do) and this process may ignore some, and the child must
/// still stop on SIGTERM.
public enum ChildProcess {
    /// Where a child's stderr goes.
    public enum StandardError: Sendable {
        /// The same file as stdout.
        case sameAsStandardOutput
        /// A file of its own, truncated.
        case file(String)
    }

    /// Starts `arguments[0]` (looked up on `PATH` unless it contains a slash) with
    /// stdout in `standardOutput` and returns its pid.
    ///
    /// - Parameters:
    ///   - appendOutput: append to `standardOutput` instead of truncating it.
    ///   - environment: the child's environment; `nil` passes this process's.
    public static func spawn(
        _ arguments: [String], standardOutput: String, appendOutput: Bool = false,
        standardError: StandardError = .sameAsStandardOutput, environment: [String: String]? = nil
    ) throws(ChildProcessError) -> pid_t {
        guard let program = arguments.first else { throw ChildProcessError("no program to start") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(
            &actions, 1, standardOutput, O_WRONLY | O_CREAT | (appendOutput ? O_APPEND : O_TRUNC), 0o644)
        switch standardError {
        case .sameAsStandardOutput: posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .file(let path): posix_spawn_file_actions_addopen(&actions, 2, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        #if os(Linux)
        // glibc >= 2.34 has posix_spawn_file_actions_addclosefrom_np, but Swift's Glibc
        // module does not declare it, so look it up.
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
            _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3)
        }
        #endif

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] {
            sigaddset(&defaultSignals, signal)
        }
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status: Int32
        if let environment {
            var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { envp.forEach { free($0) } }
            status = posix_spawnp(&pid, program, &actions, &attributes, &argv, &envp)
        } else {
            status = posix_spawnp(&pid, program, &actions, &attributes, &argv, environ)
        }
        guard status == 0 else { throw ChildProcessError("cannot start \(program): \(String(cString: strerror(status)))") }
        return pid
    }

    /// Blocks until the child exits; its exit code, or 128 + the signal that ended it.
    public static func waitForExit(_ pid: pid_t) throws(ChildProcessError) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { throw ChildProcessError("waitpid \(pid): \(String(cString: strerror(errno)))") }
        }
        return exitCode(status)
    }

    /// Whether the child has exited (reaping it if so), without blocking.
    public static func hasExited(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        return result == pid || (result < 0 && errno == ECHILD)
    }

    /// SIGTERM, up to `grace` for the child to exit, then SIGKILL; reaps it.
    public static func terminate(_ pid: pid_t, grace: Duration = .seconds(5)) {
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            if hasExited(pid) { return }
            usleep(5_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    private static func exitCode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
