import Logging
import ThreadExecutors

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A connection to one MySQL or MariaDB server over libmariadb.
///
/// The actor runs on a ``DedicatedThreadExecutor`` it owns: every method, and so every
/// blocking libmariadb call, runs on that one thread, never on Swift's cooperative
/// pool, and the `MYSQL` handle is never touched from two threads.
///
/// The connection opens with the first call. After a connection-level error the handle
/// is dropped and the next call connects again (once; callers decide about retries,
/// see ``MariaDBError/isRetryable``). A transaction never reconnects half-way: losing
/// the connection inside ``transaction(_:)`` fails the transaction.
///
/// Statements take `?` placeholders bound to ``SQLValue``s, sent as escaped literals.
public actor MariaDBConnection {
    /// Where this connection connects to.
    public nonisolated let url: MariaDBURL
    /// A Unix socket to connect through instead of TCP (used by ``LocalMariaDBServer`` for `root`).
    public nonisolated let unixSocket: String?
    /// Timeout for establishing the connection.
    public nonisolated let connectTimeout: Duration
    /// Timeout for each blocking read from, or write to, the server (whole seconds).
    public nonisolated let ioTimeout: Duration

    private let logger: Logger
    private let executor: DedicatedThreadExecutor
    private var connection: MySQLHandle?
    private var isClosed = false
    private var inTransaction = false

    /// Runs the actor on its dedicated thread.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    /// Creates a connection; nothing is connected until the first call.
    ///
    /// - Parameters:
    ///   - url: Server, credentials and database; its password is never logged.
    ///   - unixSocket: Connect through this socket instead of `url`'s host and port.
    ///   - connectTimeout: Timeout for establishing the connection.
    ///   - ioTimeout: Timeout for each read or write; a server that stops answering
    ///     fails the call with a ``MariaDBError/Kind/connection`` error after it.
    ///   - logger: Receives connects and dropped connections.
    public init(
        url: MariaDBURL, unixSocket: String? = nil, connectTimeout: Duration = .seconds(3), ioTimeout: Duration = .seconds(5),
        logger: Logger = Logger(label: "MariaDBClient")
    ) {
        self.url = url
        self.unixSocket = unixSocket
        self.connectTimeout = connectTimeout
        self.ioTimeout = ioTimeout
        self.logger = logger
        self.executor = DedicatedThreadExecutor(name: "mariadb \(url.address)")
    }

    deinit {
        executor.shutdown()
    }

    /// Whether a connection is open (it may still turn out to be dead).
    public var isConnected: Bool { connection != nil }

    /// Connects now instead of with the first statement.
    public func connect() throws(MariaDBError) {
        _ = try connected()
    }

    /// Runs a statement that returns no rows; returns the number of affected rows.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [SQLValue] = []) throws(MariaDBError) -> UInt64 {
        try run(sql, parameters).affected
    }

    /// Runs a query and returns its rows (empty for a statement without a result set).
    public func query(_ sql: String, _ parameters: [SQLValue] = []) throws(MariaDBError) -> SQLResult {
        try run(sql, parameters).result ?? SQLResult(columns: [], rows: [])
    }

    /// Runs `body` in a transaction (`START TRANSACTION` … `COMMIT`) on the dedicated
    /// thread. If `body` throws, or the commit fails, the transaction is rolled back (or
    /// dropped with the connection) and the error rethrown.
    ///
    /// A ``MariaDBError/Kind/connection`` error from `COMMIT` leaves it unknown whether
    /// the transaction committed: callers that retry must make the transaction
    /// idempotent (check first what it already did, as the engine's SQL sink does).
    public func transaction<T: Sendable>(_ body: @Sendable (isolated MariaDBConnection) throws -> T) throws -> T {
        guard !inTransaction else { throw MariaDBError(kind: .invalidArgument, message: "MariaDB at \(url.address): transactions do not nest") }
        _ = try run("START TRANSACTION", [])
        inTransaction = true
        defer { inTransaction = false }
        let value: T
        do {
            value = try body(self)
            _ = try run("COMMIT", [])
        } catch {
            if let connection {
                _ = try? connection.run("ROLLBACK")
            }
            throw error
        }
        return value
    }

    /// `sql` with every `?` outside quotes replaced by its value as an escaped literal.
    public func render(_ sql: String, _ parameters: [SQLValue]) throws(MariaDBError) -> String {
        let connection = try connected()
        return try Self.render(sql, parameters) { connection.escape($0) }
    }

    /// Closes the connection and stops its thread; later calls throw ``MariaDBError/Kind/closed``.
    public func close() {
        if isClosed { return }
        isClosed = true
        connection = nil
        executor.shutdown()
    }

    // MARK: - Private

    private func run(_ sql: String, _ parameters: [SQLValue]) throws(MariaDBError) -> (result: SQLResult?, affected: UInt64) {
        let connection = try connected()
        let text = parameters.isEmpty ? sql : try Self.render(sql, parameters) { connection.escape($0) }
        do {
            return try connection.run(text)
        } catch {
            if error.kind == .connection {
                if self.connection === connection { self.connection = nil }
                logger.warning("dropping connection to MariaDB at \(url.address): \(error.description)")
            }
            throw error
        }
    }

    private func connected() throws(MariaDBError) -> MySQLHandle {
        if isClosed { throw MariaDBError(kind: .closed, message: "MariaDB at \(url.address): connection was closed") }
        if let connection { return connection }
        if inTransaction {
            throw MariaDBError(kind: .connection, message: "MariaDB at \(url.address): connection lost inside a transaction")
        }
        // A write to a socket the server closed raises SIGPIPE: block it on this
        // (dedicated) thread so that the write fails with EPIPE instead.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
        let connection = try MySQLHandle.connect(
            host: url.host, port: url.port, unixSocket: unixSocket, user: url.user, password: url.password, database: url.database,
            connectTimeout: connectTimeout, readTimeout: ioTimeout, writeTimeout: ioTimeout)
        self.connection = connection
        logger.info("connected to MariaDB at \(unixSocket ?? url.address) as \(url.user), database \(url.database)")
        return connection
    }

    /// Substitutes the placeholders; `escape` escapes text for a quoted literal.
    static func render(_ sql: String, _ parameters: [SQLValue], escape: (String) -> String) throws(MariaDBError) -> String {
        var out = ""
        out.reserveCapacity(sql.utf8.count + parameters.count * 16)
        var next = 0
        var quote: Character?
        for ch in sql {
            if let q = quote {
                out.append(ch)
                if ch == q { quote = nil }
                continue
            }
            switch ch {
            case "'", "\"", "`":
                quote = ch
                out.append(ch)
            case "?":
                guard next < parameters.count else {
                    throw MariaDBError(kind: .invalidArgument, message: "statement has more placeholders than the \(parameters.count) values given")
                }
                switch parameters[next] {
                case .null: out += "NULL"
                case .int(let i): out += String(i)
                case .double(let d):
                    guard d.isFinite else { throw MariaDBError(kind: .invalidArgument, message: "cannot store \(d) in SQL") }
                    out += "\(d)"
                case .decimal(let s):
                    guard SQLValue.isDecimal(s) else { throw MariaDBError(kind: .invalidArgument, message: "not a decimal number: \(s)") }
                    out += s
                case .text(let s):
                    out += "'" + escape(s) + "'"
                }
                next += 1
            default:
                out.append(ch)
            }
        }
        guard next == parameters.count else {
            throw MariaDBError(kind: .invalidArgument, message: "statement has \(next) placeholders but \(parameters.count) values were given")
        }
        return out
    }
}
