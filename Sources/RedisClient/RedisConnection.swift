import CHiredis
import Logging
import ThreadExecutors

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A connection to one Redis server over hiredis.
///
/// The actor runs on a ``DedicatedThreadExecutor`` it owns: every method (and so every
/// blocking hiredis call) runs on that one thread, never on Swift's cooperative pool,
/// and the hiredis context is never touched from two threads.
///
/// The connection is opened lazily by the first call, which also sends `AUTH` (user and
/// password, or password only) and `SELECT db` as the URL says. After any I/O or
/// protocol error the hiredis context is freed and never reused; the next call
/// reconnects, retrying with exponential backoff as ``ReconnectPolicy`` says, and
/// throws a ``RedisError`` if Redis stays unreachable. A command that failed because
/// of an I/O error is not retried (it may or may not have been executed). Cancelling the
/// calling task during the backoff pauses ends the call with `CancellationError`.
public actor RedisConnection {
    /// How a call reconnects when there is no usable connection.
    public struct ReconnectPolicy: Sendable, Hashable {
        /// Connection attempts per call before giving up (at least 1).
        public var maxAttempts: Int
        /// Pause after the first failed attempt; doubles after each further failure.
        public var initialDelay: Duration
        /// Upper bound of the pause between attempts.
        public var maxDelay: Duration

        /// Creates a policy; the default tries 5 times, pausing 50, 100, 200 and 400 ms.
        public init(
            maxAttempts: Int = 5, initialDelay: Duration = .milliseconds(50), maxDelay: Duration = .seconds(2)
        ) {
            self.maxAttempts = maxAttempts
            self.initialDelay = initialDelay
            self.maxDelay = maxDelay
        }
    }

    /// Where this connection connects to.
    public nonisolated let url: RedisURL
    /// Timeout for establishing the TCP connection.
    public nonisolated let connectTimeout: Duration
    /// Timeout for each blocking read or write on the socket.
    public nonisolated let commandTimeout: Duration
    /// How calls reconnect after the connection was lost.
    public nonisolated let reconnectPolicy: ReconnectPolicy

    private let logger: Logger
    private let executor: DedicatedThreadExecutor
    private var context: HiredisContext?
    private var isClosed = false
    /// SHA1 of each script loaded with `SCRIPT LOAD`, by script text.
    private var scriptSHAs: [String: String] = [:]

    /// Runs the actor on its dedicated thread.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    /// Creates a connection; nothing is connected until the first call.
    ///
    /// - Parameters:
    ///   - url: Server address, credentials and database.
    ///   - connectTimeout: Timeout for establishing the TCP connection.
    ///   - commandTimeout: Timeout for each blocking socket read or write; on expiry the
    ///     call throws a ``RedisError/Kind/timeout`` error and the connection is dropped.
    ///   - reconnect: Retry policy used when a call finds no usable connection.
    ///   - logger: Receives connects, disconnects and reconnect attempts.
    public init(
        url: RedisURL,
        connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(5),
        reconnect: ReconnectPolicy = ReconnectPolicy(),
        logger: Logger = Logger(label: "RedisClient")
    ) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.reconnectPolicy = reconnect
        self.logger = logger
        self.executor = DedicatedThreadExecutor(name: "redis \(url.address)")
    }

    deinit {
        executor.shutdown()
    }

    /// Whether a connection is currently open (it may still turn out to be dead).
    public var isConnected: Bool { context != nil }

    /// Connects now instead of at the first command (with the same retries).
    public func connect() async throws {
        _ = try await connectedContext()
    }

    /// Sends one command and returns its reply.
    ///
    /// - Parameter arguments: The command and its arguments, e.g. `["SET", "k", "v"]`.
    /// - Throws: ``RedisError``; an error reply from the server is thrown as
    ///   ``RedisError/Kind/server`` with the server's message.
    @discardableResult
    public func command(_ arguments: [String]) async throws -> RedisReply {
        try await command(arguments.map { Array($0.utf8) })
    }

    /// Sends one command whose arguments are arbitrary bytes (NUL bytes included).
    ///
    /// - Throws: ``RedisError``; an error reply is thrown as ``RedisError/Kind/server``.
    @discardableResult
    public func command(_ arguments: [[UInt8]]) async throws -> RedisReply {
        guard !arguments.isEmpty else {
            throw RedisError(kind: .invalidArgument, message: "empty command")
        }
        let reply = try await roundTrip([arguments])[0]
        if case .error(let message) = reply {
            throw RedisError(kind: .server, message: message)
        }
        return reply
    }

    /// Sends all commands in one batch, then reads their replies, in order.
    ///
    /// Error replies are returned as ``RedisReply/error(_:)`` elements, not thrown;
    /// only connection-level failures throw.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisReply] {
        try await pipeline(commands.map { $0.map { Array($0.utf8) } })
    }

    /// Binary-safe variant of ``pipeline(_:)-([[String]])``.
    public func pipeline(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        if commands.isEmpty { return [] }
        guard commands.allSatisfy({ !$0.isEmpty }) else {
            throw RedisError(kind: .invalidArgument, message: "empty command in pipeline")
        }
        return try await roundTrip(commands)
    }

    /// Runs the commands atomically in `MULTI` ... `EXEC` (sent as one batch) and
    /// returns the `EXEC` results, one per command.
    ///
    /// A command failing at run time (e.g. `INCR` on a non-number) yields a
    /// ``RedisReply/error(_:)`` element while the others still take effect.
    ///
    /// - Throws: ``RedisError/Kind/server`` if the transaction was discarded: a command
    ///   was rejected while queueing (`EXECABORT`, nothing executed), or a key `WATCH`ed
    ///   earlier on this connection changed (`EXEC` returned null).
    public func transaction(_ commands: [[String]]) async throws -> [RedisReply] {
        guard commands.allSatisfy({ !$0.isEmpty }) else {
            throw RedisError(kind: .invalidArgument, message: "empty command in transaction")
        }
        let batch: [[[UInt8]]] =
            [[Array("MULTI".utf8)]] + commands.map { $0.map { Array($0.utf8) } } + [[Array("EXEC".utf8)]]
        let replies = try await roundTrip(batch)
        if case .error(let message) = replies[0] {
            throw RedisError(kind: .server, message: "MULTI failed: \(message)")
        }
        switch replies[replies.count - 1] {
        case .array(let results):
            return results
        case .null:
            throw RedisError(kind: .server, message: "transaction aborted: a WATCHed key was modified")
        case .error(let message):
            let queueErrors = replies.dropFirst().dropLast().compactMap(\.errorMessage)
            let detail = queueErrors.isEmpty ? "" : " (\(queueErrors.joined(separator: "; ")))"
            throw RedisError(kind: .server, message: "\(message)\(detail)")
        case let other:
            throw RedisError(kind: .protocol, message: "redis at \(url.address): unexpected EXEC reply \(other)")
        }
    }

    /// Runs a Lua script with `EVALSHA`.
    ///
    /// The script is loaded once with `SCRIPT LOAD` and its SHA1 cached; when the server
    /// answers `NOSCRIPT` (after `SCRIPT FLUSH` or a restart) it is loaded again and the
    /// call retried once.
    ///
    /// - Throws: ``RedisError``; an error raised by the script is thrown as
    ///   ``RedisError/Kind/server``.
    public func evalScript(_ script: String, keys: [String], args: [String]) async throws -> RedisReply {
        try await evalScript(script, calls: [RedisScriptCall(keys: keys, args: args)])[0]
    }

    /// Runs a Lua script once per call with `EVALSHA`, every call sent in one batch (one
    /// round trip), and returns the replies in order.
    ///
    /// Calls the server answers `NOSCRIPT` (after `SCRIPT FLUSH` or a restart) did not
    /// run: the script is loaded again and those calls are sent once more.
    ///
    /// - Throws: ``RedisError``; the first error raised by the script is thrown as
    ///   ``RedisError/Kind/server`` after every call has been answered (the other calls
    ///   of the batch have run).
    public func evalScript(_ script: String, calls: [RedisScriptCall]) async throws -> [RedisReply] {
        if calls.isEmpty { return [] }
        var replies = [RedisReply?](repeating: nil, count: calls.count)
        var pending = Array(calls.indices)
        var reloaded = false
        while !pending.isEmpty {
            let sha = try await scriptSHA(for: script)
            let commands = pending.map { Self.evalSHA(sha, calls[$0]) }
            let answers = try await roundTrip(commands)
            var again: [Int] = []
            for (i, reply) in zip(pending, answers) {
                if case .error(let message) = reply, message.hasPrefix("NOSCRIPT"), !reloaded {
                    again.append(i)
                } else {
                    replies[i] = reply
                }
            }
            if !again.isEmpty {
                logger.debug("script \(sha) unknown to redis at \(url.address), loading it again")
                scriptSHAs[script] = nil
                reloaded = true
            }
            pending = again
        }
        let result = replies.map { $0 ?? .null }
        for reply in result {
            if case .error(let message) = reply { throw RedisError(kind: .server, message: message) }
        }
        return result
    }

    /// An `EVALSHA` call encoded in place: a commit's script call carries every changed key's arguments.
    private static func evalSHA(_ sha: String, _ call: RedisScriptCall) -> RESPCommand {
        let argumentCount = 3 + call.keys.count + call.args.count + call.encodedArgs.count
        var command = RESPCommand(argumentCount: argumentCount, capacity: call.args.reduce(64 + call.encodedArgs.bytes.count) { $0 + $1.utf8.count + 8 })
        command.append("EVALSHA")
        command.append(sha)
        command.append(String(call.keys.count))
        for key in call.keys { command.append(key) }
        for arg in call.args { command.append(arg) }
        command.append(call.encodedArgs)
        return command
    }

    /// Closes the connection and stops its thread; later calls throw
    /// ``RedisError/Kind/closed``. Calling it again does nothing.
    public func close() {
        if isClosed { return }
        isClosed = true
        if context != nil {
            logger.debug("closing connection to redis at \(url.address)")
        }
        context = nil
        scriptSHAs.removeAll()
        executor.shutdown()
    }

    // MARK: - Private

    private func scriptSHA(for script: String) async throws -> String {
        if let sha = scriptSHAs[script] { return sha }
        let reply = try await command(["SCRIPT", "LOAD", script])
        guard let sha = reply.string else {
            throw RedisError(kind: .protocol, message: "redis at \(url.address): unexpected SCRIPT LOAD reply \(reply)")
        }
        scriptSHAs[script] = sha
        return sha
    }

    /// Sends the commands on a usable connection and reads their replies. On a
    /// connection-level error the context is dropped before the error is thrown.
    private func roundTrip(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        try await withContext { context throws(RedisError) in try context.roundTrip(commands) }
    }

    private func roundTrip(_ commands: [RESPCommand]) async throws -> [RedisReply] {
        try await withContext { context throws(RedisError) in try context.roundTrip(commands) }
    }

    /// Runs `body` on the open context (connecting first if needed); a failure drops it.
    private func withContext<T>(_ body: (HiredisContext) throws(RedisError) -> T) async throws -> T {
        let context = try await connectedContext()
        do {
            return try body(context)
        } catch {
            if self.context === context {
                self.context = nil
            }
            logger.warning("dropping connection to redis at \(url.address): \(error.message)")
            throw error
        }
    }

    /// Returns the open context, or connects, retrying with backoff.
    private func connectedContext() async throws -> HiredisContext {
        if isClosed {
            throw RedisError(kind: .closed, message: "redis at \(url.address): connection was closed")
        }
        if let context {
            if !context.isStale { return context }
            logger.info("connection to redis at \(url.address) was closed by the server, reconnecting")
            self.context = nil
        }
        let attempts = max(1, reconnectPolicy.maxAttempts)
        var delay = reconnectPolicy.initialDelay
        var lastError = RedisError(kind: .io, message: "redis at \(url.address): not connected")
        for attempt in 1...attempts {
            do {
                let context = try openContext()
                self.context = context
                logger.info("connected to redis at \(url.address)", metadata: ["attempt": "\(attempt)"])
                return context
            } catch let error as RedisError where error.kind == .server {
                throw error  // AUTH or SELECT rejected: retrying will not help
            } catch let error as RedisError {
                lastError = error
                logger.warning(
                    "cannot connect to redis at \(url.address): \(error.message)",
                    metadata: ["attempt": "\(attempt)", "maxAttempts": "\(attempts)"])
            }
            if attempt == attempts { break }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, reconnectPolicy.maxDelay)
            // Another call may have connected (or closed) while this one slept.
            if isClosed {
                throw RedisError(kind: .closed, message: "redis at \(url.address): connection was closed")
            }
            if let context { return context }
        }
        throw RedisError(
            kind: lastError.kind,
            message: attempts > 1 ? "\(lastError.message) (gave up after \(attempts) attempts)" : lastError.message)
    }

    /// Connects once, then sends AUTH and SELECT as the URL says.
    private func openContext() throws -> HiredisContext {
        // Writing to a socket the server has closed raises SIGPIPE, which would kill the
        // process. hiredis uses write(2), so block SIGPIPE on this (dedicated) thread only:
        // the write then fails with EPIPE and becomes an I/O error.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)

        let context = try HiredisContext.connect(
            host: url.host, port: url.port, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
        var setup: [[String]] = []
        if let password = url.password {
            setup.append(url.user.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if url.db != 0 {
            setup.append(["SELECT", String(url.db)])
        }
        if !setup.isEmpty {
            let replies = try context.roundTrip(setup.map { $0.map { Array($0.utf8) } })
            for (command, reply) in zip(setup, replies) {
                if case .error(let message) = reply {
                    throw RedisError(
                        kind: .server, message: "\(command[0]) failed at redis at \(url.address): \(message)")
                }
            }
        }
        return context
    }
}

/// One call of a Lua script: its keys and arguments (``RedisConnection/evalScript(_:calls:)``).
public struct RedisScriptCall: Sendable, Equatable {
    public var keys: [String]
    public var args: [String]
    /// Arguments after `args`, encoded already (a long list built piece by piece).
    public var encodedArgs: RedisArguments

    public init(keys: [String], args: [String], encodedArgs: RedisArguments = RedisArguments()) {
        self.keys = keys
        self.args = args
        self.encodedArgs = encodedArgs
    }
}

