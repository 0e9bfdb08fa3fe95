import ChildProcess
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `mariadbd` process on a free loopback port, for tests and demos.
///
/// The initializer creates a fresh data directory in a temporary folder with
/// `mariadb-install-db`, starts `mariadbd` on `127.0.0.1` (its log goes to
/// `mariadb.log` in that folder), waits until it accepts connections, and creates a
/// database and a user with a random password; ``url`` connects as that user.
///
/// ``stop()`` shuts the server down (SIGTERM, then SIGKILL after 30 s) and ``start()``
/// starts it again on the same port and data, ``close()`` stops it and removes the folder, ``pause()`` / ``resume()`` freeze and
/// thaw it (SIGSTOP / SIGCONT): that is how outage tests take MariaDB away. The process
/// is stopped and the folder removed when the object is deinitialized.
///
/// The initializer, `start()` and `stop()` block the calling thread (the first start
/// takes a few seconds: `mariadb-install-db` writes the system tables).
public final class LocalMariaDBServer: Sendable {
    /// The TCP port the server listens on (on 127.0.0.1).
    public let port: Int
    /// The temporary folder holding `data/`, the socket and `mariadb.log`.
    public let directory: String
    /// The database created for ``url``.
    public let database: String
    /// The user created for ``url``.
    public let user: String
    /// That user's (random) password.
    public let password: String
    private let server: String
    /// The server's process id and that of its watchdog, while it runs.
    private let process = Mutex<(server: pid_t, watchdog: pid_t?)?>(nil)

    /// `mysql://user:password@127.0.0.1:port/database` for this server.
    public var url: MariaDBURL { MariaDBURL(host: "127.0.0.1", port: port, user: user, password: password, database: database) }

    /// The server's Unix socket (root may log in through it without a password).
    public var socketPath: String { "\(directory)/mariadb.sock" }

    /// The process id while the server runs.
    public var pid: pid_t? { process.withLock { $0?.server } }

    /// Creates a data directory, starts `mariadbd` and creates `database` and `user`.
    ///
    /// - Throws: ``MariaDBError`` of kind ``MariaDBError/Kind/localServer`` if the
    ///   binaries are missing (`apt-get install mariadb-server`) or the server does not
    ///   come up; the message ends with the tail of the server's log.
    public init(database: String = "streamengine", user: String = "streamengine", startupTimeout: Duration = .seconds(60)) throws {
        guard let installer = Self.find("mariadb-install-db", in: ["/usr/bin", "/usr/local/bin"]),
              let server = Self.find("mariadbd", in: ["/usr/sbin", "/usr/bin", "/usr/local/sbin"]) else {
            throw MariaDBError(kind: .localServer, message: "mariadbd or mariadb-install-db not found (apt-get install mariadb-server)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("local-mariadb-\(UUID().uuidString.prefix(8))").path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw MariaDBError(kind: .localServer, message: "cannot create \(directory): \(error)")
        }
        self.directory = directory
        self.database = database
        self.user = user
        self.password = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        self.server = server
        // A tmpdir of its own: servers installing at the same time would clash on temporary table names in /tmp.
        try? FileManager.default.createDirectory(atPath: "\(directory)/tmp", withIntermediateDirectories: true)
        var install = [installer, "--no-defaults", "--datadir=\(directory)/data", "--tmpdir=\(directory)/tmp",
                       "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"] + Self.serverOptions
        if getuid() == 0 { install.append("--user=root") }
        let status = Self.runToEnd(install, log: "\(directory)/install.log")
        guard status == 0 else {
            let log = Self.tail("\(directory)/install.log")
            try? FileManager.default.removeItem(atPath: directory)
            throw MariaDBError(kind: .localServer, message: "mariadb-install-db exited with \(status); log:\n\(log)")
        }
        var attempt = 0
        var chosen: Int?
        while chosen == nil {
            attempt += 1
            let port = try Self.freePort()
            do {
                let pids = try Self.launch(server: server, port: port, directory: directory, timeout: startupTimeout)
                process.withLock { $0 = pids }
                chosen = port
            } catch where attempt < 5 && "\(error)".contains("Address already in use") {
                continue
            } catch {
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
        }
        self.port = chosen!
        do {
            try Self.createUser(socket: socketPath, database: database, user: user, password: password)
        } catch {
            stop()
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Starts a server like the initializer, on a thread of its own: the caller is
    /// suspended, not blocked, while `mariadb-install-db` and `mariadbd` start.
    public static func start(database: String = "streamengine", user: String = "streamengine") async throws -> LocalMariaDBServer {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<LocalMariaDBServer, any Error>) in
            let thread = Thread { continuation.resume(with: Result { try LocalMariaDBServer(database: database, user: user) }) }
            thread.name = "local-mariadb"
            thread.start()
        }
    }

    deinit {
        close()
    }

    /// Stops the server and removes its folder (data included); the end of its life.
    /// Calling it again does nothing.
    public func close() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts the server again (same port and data) after ``stop()``; does nothing if it runs.
    public func start(timeout: Duration = .seconds(60)) throws {
        try process.withLock { pids in
            if pids != nil { return }
            pids = try Self.launch(server: server, port: port, directory: directory, timeout: timeout)
        }
    }

    /// Shuts the server down: SIGTERM, wait up to 30 s, then SIGKILL. Does nothing if it is stopped.
    public func stop() {
        process.withLock { pids in
            guard let running = pids else { return }
            if let watchdog = running.watchdog {
                kill(watchdog, SIGKILL)  // it ignores SIGTERM
                _ = try? ChildProcess.waitForExit(watchdog)
            }
            kill(running.server, SIGCONT)  // a paused server cannot shut down
            Self.terminate(running.server)
            pids = nil
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers.
    /// Returns once the kernel reports it stopped (signals are delivered asynchronously).
    public func pause() {
        guard let pid else { return }
        kill(pid, SIGSTOP)
        let deadline = ContinuousClock.now + .seconds(2)
        func stopped(_ statPath: String) -> Bool {
            // "<tid> (<comm>) <state> …"; T is stopped.
            guard let stat = try? String(contentsOfFile: statPath, encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
            return stat[close...].dropFirst(2).first == "T"
        }
        while ContinuousClock.now < deadline {
            // Every thread of the process, not only the main one.
            guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return }
            if threads.allSatisfy({ stopped("/proc/\(pid)/task/\($0)/stat") }) { return }
            usleep(1_000)
        }
    }

    /// Thaws a paused server (SIGCONT).
    public func resume() {
        if let pid { kill(pid, SIGCONT) }
    }

    // MARK: - Private

    /// Small buffers: a test server holds little data.
    private static let serverOptions = [
        "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M", "--skip-log-bin", "--performance-schema=OFF",
        "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
    ]

    private static func find(_ name: String, in fallback: [String]) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + fallback
        return path.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MariaDBError(kind: .localServer, message: "socket(): \(String(cString: strerror(errno)))") }
        defer { closeDescriptor(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw MariaDBError(kind: .localServer, message: "cannot find a free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs a command with stdout and stderr in `log`; returns its exit status.
    private static func runToEnd(_ arguments: [String], log: String) -> Int32 {
        do {
            return try ChildProcess.waitForExit(try ChildProcess.spawn(arguments, standardOutput: log))
        } catch {
            return -1
        }
    }

    /// Starts `mariadbd`, waits until root can log in through the socket, and starts
    /// its watchdog: a shell that shuts the server down and removes `directory` if this
    /// process dies without stopping it (SIGKILL, a crash), so no server is left behind.
    private static func launch(server: String, port: Int, directory: String, timeout: Duration) throws -> (server: pid_t, watchdog: pid_t?) {
        let log = "\(directory)/mariadb.log"
        var arguments = [server, "--no-defaults", "--datadir=\(directory)/data", "--tmpdir=\(directory)/tmp", "--socket=\(directory)/mariadb.sock",
                         "--port=\(port)", "--bind-address=127.0.0.1", "--pid-file=\(directory)/mariadb.pid",
                         "--log-error=\(log)", "--skip-name-resolve"] + serverOptions
        if getuid() == 0 { arguments.append("--user=root") }
        let before = (try? String(contentsOfFile: log, encoding: .utf8))?.utf8.count ?? 0
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(arguments, standardOutput: "\(directory)/mariadbd.out", appendOutput: true)
        } catch {
            throw MariaDBError(kind: .localServer, message: "cannot start \(server): \(error)")
        }
        let deadline = ContinuousClock.now + timeout
        while true {
            if ChildProcess.hasExited(pid) {
                throw MariaDBError(kind: .localServer, message: "mariadbd on port \(port) exited during startup; log:\n\(tail(log, after: before))")
            }
            if (try? MySQLHandle.connect(
                host: "localhost", port: 0, unixSocket: "\(directory)/mariadb.sock", user: "root", password: nil, database: nil,
                connectTimeout: .seconds(1), readTimeout: .seconds(2), writeTimeout: .seconds(2))) != nil {
                // Signals for the whole process group (a terminal's SIGHUP or SIGINT, a test
                // runner's) must not take the watchdog away before the server.
                let script = """
                    trap '' HUP INT TERM QUIT
                    while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done
                    kill -CONT \(pid) 2>/dev/null; kill -TERM \(pid) 2>/dev/null
                    i=0; while kill -0 \(pid) 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
                    kill -KILL \(pid) 2>/dev/null; rm -rf '\(directory)'
                    """
                let watchdog = try? ChildProcess.spawn(["/bin/sh", "-c", script], standardOutput: "/dev/null")
                return (pid, watchdog)
            }
            if ContinuousClock.now >= deadline {
                terminate(pid)
                throw MariaDBError(kind: .localServer, message: "mariadbd on port \(port) did not accept connections within \(timeout); log:\n\(tail(log, after: before))")
            }
            usleep(50_000)
        }
    }

    private static func createUser(socket: String, database: String, user: String, password: String) throws {
        let root = try MySQLHandle.connect(
            host: "localhost", port: 0, unixSocket: socket, user: "root", password: nil, database: nil,
            connectTimeout: .seconds(5), readTimeout: .seconds(30), writeTimeout: .seconds(30))
        let quotedUser = root.escape(user), quotedPassword = root.escape(password)
        _ = try root.run("CREATE DATABASE IF NOT EXISTS `\(database.replacingOccurrences(of: "`", with: "``"))`")
        _ = try root.run("CREATE USER IF NOT EXISTS '\(quotedUser)'@'%' IDENTIFIED BY '\(quotedPassword)'")
        _ = try root.run("GRANT ALL PRIVILEGES ON `\(database.replacingOccurrences(of: "`", with: "``"))`.* TO '\(quotedUser)'@'%'")
    }

    /// SIGTERM, then SIGKILL if it has not shut down within 30 s (InnoDB flushes first).
    private static func terminate(_ pid: pid_t) {
        ChildProcess.terminate(pid, grace: .seconds(30))
    }

    private static func tail(_ path: String, after offset: Int = 0) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no log)" }
        let lines = String(decoding: Array(text.utf8).dropFirst(offset), as: UTF8.self).split(separator: "\n")
        return lines.suffix(12).joined(separator: "\n")
    }
}

/// `close(2)` (inside ``LocalMariaDBServer`` the name is its own `close()`).
private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
