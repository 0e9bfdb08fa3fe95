import CHiredis
import ChildProcess
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error starting or talking to a ``LocalRedisServer``.
public struct LocalRedisServerError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, including the tail of the server's log when relevant.
    public let message: String

    /// `LocalRedisServer: <message>`.
    public var description: String { "LocalRedisServer: \(message)" }
}

/// A real `redis-server` process on a free loopback port, for tests and demos.
///
/// Started with `--save "" --appendonly no --bind 127.0.0.1 --daemonize no` in a fresh
/// temporary directory (its log goes to `redis.log` there). The initializer returns
/// once the server answers `PING`. ``stop()`` terminates it (SIGTERM, then SIGKILL if it
/// does not exit), ``start()`` starts it again on the same port, which is how outage
/// tests simulate Redis going down and coming back. The process is stopped and the
/// directory removed when the object is deinitialized.
///
/// `start()`, `stop()` and the initializer block the calling thread for as long as the
/// server takes to start or exit (typically a few milliseconds).
public final class LocalRedisServer: Sendable {
    /// The TCP port the server listens on (on 127.0.0.1).
    public let port: Int
    /// The password given with `--requirepass`, if any.
    public let password: String?
    /// The temporary working directory of the server.
    public let directory: String
    /// The `redis-server` executable in use.
    public let executable: String

    private let extraArguments: [String]
    private let startupTimeout: Duration
    private let process = Mutex<pid_t?>(nil)

    /// `redis://[:password@]127.0.0.1:port/0` for this server.
    public var url: RedisURL {
        RedisURL(host: "127.0.0.1", port: port, db: 0, password: password)
    }

    /// Whether the server process is running (as far as this object knows).
    public var isRunning: Bool {
        process.withLock { $0 != nil }
    }

    /// Starts `redis-server` on a free port and waits until it answers `PING`.
    ///
    /// - Parameters:
    ///   - password: If set, the server is started with `--requirepass` and ``url``
    ///     carries the password.
    ///   - extraArguments: More command-line options, e.g. `["--user", "alice", "on", ">pw", "~*", "+@all"]`.
    ///   - startupTimeout: How long to wait for `PING` to answer.
    /// - Throws: ``LocalRedisServerError`` if no `redis-server` binary is found, it
    ///   exits during startup, or it does not answer in time.
    public init(
        password: String? = nil, extraArguments: [String] = [], startupTimeout: Duration = .seconds(10)
    ) throws {
        guard let executable = Self.findExecutable() else {
            throw LocalRedisServerError(
                message: "redis-server not found on PATH or at /usr/bin/redis-server (apt-get install redis-server)")
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("local-redis-\(UUID().uuidString)").path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LocalRedisServerError(message: "cannot create \(directory): \(error)")
        }
        // Probe for a free port, and retry with another one if something grabbed it
        // between the probe and redis-server's bind.
        var attempt = 0
        while true {
            attempt += 1
            let port = try Self.freePort()
            do {
                let pid = try Self.launch(
                    executable: executable, port: port, password: password, extraArguments: extraArguments,
                    directory: directory, timeout: startupTimeout)
                self.port = port
                self.password = password
                self.directory = directory
                self.executable = executable
                self.extraArguments = extraArguments
                self.startupTimeout = startupTimeout
                self.process.withLock { $0 = pid }
                return
            } catch let error as LocalRedisServerError
                where attempt < 5 && error.message.contains("Address already in use") {
                continue
            } catch {
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts the server again on the same port after ``stop()``; does nothing if it runs.
    ///
    /// - Throws: ``LocalRedisServerError`` if it does not come up (for example because
    ///   another process took the port meanwhile).
    public func start() throws {
        try process.withLock { pid in
            if pid != nil { return }
            pid = try Self.launch(
                executable: executable, port: port, password: password, extraArguments: extraArguments,
                directory: directory, timeout: startupTimeout)
        }
    }

    /// Stops the server: SIGTERM, wait up to 5 s, then SIGKILL. Does nothing if it is stopped.
    public func stop() {
        process.withLock { pid in
            guard let running = pid else { return }
            ChildProcess.terminate(running, grace: .seconds(5))
            pid = nil
        }
    }

    // MARK: - Private

    private static func findExecutable() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/redis-server"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        let fallback = "/usr/bin/redis-server"
        return access(fallback, X_OK) == 0 ? fallback : nil
    }

    /// Binds a socket to 127.0.0.1:0 and returns the port the kernel picked.
    private static func freePort() throws -> Int {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else {
            throw LocalRedisServerError(message: "socket() failed: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            throw LocalRedisServerError(message: "cannot find a free port: \(String(cString: strerror(errno)))")
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Spawns redis-server and waits until it answers PING; returns its pid.
    private static func launch(
        executable: String, port: Int, password: String?, extraArguments: [String], directory: String,
        timeout: Duration
    ) throws -> pid_t {
        var arguments = [
            executable, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--dir", directory, "--logfile", "",
        ]
        if let password {
            arguments += ["--requirepass", password]
        }
        arguments += extraArguments
        let logPath = "\(directory)/redis.log"

        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(arguments, standardOutput: logPath, appendOutput: true)
        } catch {
            throw LocalRedisServerError(message: error.message)
        }

        let deadline = ContinuousClock.now + timeout
        while true {
            if ChildProcess.hasExited(pid) {
                throw LocalRedisServerError(
                    message: "redis-server on port \(port) exited during startup; log:\n\(logTail(logPath))")
            }
            if answersPing(port: port) { return pid }
            if ContinuousClock.now >= deadline {
                ChildProcess.terminate(pid)
                throw LocalRedisServerError(
                    message: "redis-server on port \(port) did not answer PING within \(timeout); log:\n"
                        + logTail(logPath))
            }
            usleep(10_000)
        }
    }

    /// Whether something on the port answers PING (NOAUTH counts: the server is up).
    private static func answersPing(port: Int) -> Bool {
        guard
            let context = try? HiredisContext.connect(
                host: "127.0.0.1", port: port, connectTimeout: .milliseconds(250), commandTimeout: .milliseconds(250)),
            let reply = try? context.roundTrip([[Array("PING".utf8)]]).first
        else { return false }
        if case .error(let message) = reply, message.hasPrefix("LOADING") { return false }
        return true
    }

    private static func logTail(_ path: String) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no log)" }
        return text.split(separator: "\n").suffix(10).joined(separator: "\n")
    }
}
