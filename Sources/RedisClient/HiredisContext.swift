import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns one blocking hiredis context. Not thread-safe and deliberately not `Sendable`:
/// it is only ever used from the dedicated thread of the ``RedisConnection`` that
/// created it (or locally within one synchronous function). Freed on deinit.
final class HiredisContext {
    let handle: UnsafeMutablePointer<redisContext>
    /// `host:port`, for error messages.
    let address: String

    private init(handle: UnsafeMutablePointer<redisContext>, address: String) {
        self.handle = handle
        self.address = address
    }

    deinit {
        redisFree(handle)
    }

    /// Connects (blocking, with a timeout) and applies `commandTimeout` to reads and writes.
    static func connect(
        host: String, port: Int, connectTimeout: Duration, commandTimeout: Duration?
    ) throws(RedisError) -> HiredisContext {
        let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard let raw = redisConnectWithTimeout(host, Int32(port), timeval(connectTimeout)) else {
            throw RedisError(kind: .io, message: "redis at \(address): out of memory allocating a context")
        }
        let context = HiredisContext(handle: raw, address: address)
        if raw.pointee.err != 0 {
            throw context.error
        }
        if let commandTimeout, redisSetTimeout(raw, timeval(commandTimeout)) != REDIS_OK {
            throw context.error
        }
        return context
    }

    /// The error recorded in the context, mapped to a ``RedisError`` naming the address.
    var error: RedisError {
        let code = handle.pointee.err
        let text = withUnsafeBytes(of: handle.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let kind: RedisError.Kind
        switch code {
        case REDIS_ERR_PROTOCOL:
            kind = .protocol
        case REDIS_ERR_EOF:
            kind = .io
        default:
            if text.contains("Connection refused") {
                kind = .connectionRefused
            } else if text.contains("Resource temporarily unavailable") || text.contains("timed out") {
                kind = .timeout
            } else {
                kind = .io
            }
        }
        let detail = kind == .timeout && text.contains("Resource temporarily unavailable")
            ? "timed out waiting for a reply (\(text))" : text
        return RedisError(kind: kind, message: "redis at \(address): \(detail.isEmpty ? "error \(code)" : detail)")
    }

    /// Appends one command to the output buffer (binary-safe).
    func append(_ arguments: [[UInt8]]) throws(RedisError) {
        precondition(!arguments.isEmpty)
        var command = RESPCommand(argumentCount: arguments.count, capacity: arguments.reduce(16) { $0 + $1.count + 16 })
        for argument in arguments { command.append(argument) }
        try append(command)
    }

    /// Appends one encoded command to the output buffer (`redisAppendFormattedCommand`
    /// copies it as it is).
    func append(_ command: RESPCommand) throws(RedisError) {
        precondition(command.isComplete, "a command with \(command.appended) of its \(command.argumentCount) arguments")
        let status = command.bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(handle, $0.baseAddress, $0.count) }
        }
        if status != REDIS_OK {
            throw error
        }
    }

    /// Reads the next reply (flushing the output buffer first if needed).
    func readReply() throws(RedisError) -> RedisReply {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(handle, &raw) == REDIS_OK, let raw else {
            throw error
        }
        defer { freeReplyObject(raw) }
        return RedisReply(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Sends the commands in one batch and reads one reply per command.
    func roundTrip(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        for command in commands {
            try append(command)
        }
        return try readReplies(commands.count)
    }

    /// Sends encoded commands in one batch and reads their replies, in order.
    func roundTrip(_ commands: [RESPCommand]) throws(RedisError) -> [RedisReply] {
        for command in commands {
            try append(command)
        }
        return try readReplies(commands.count)
    }

    private func readReplies(_ count: Int) throws(RedisError) -> [RedisReply] {
        var replies: [RedisReply] = []
        replies.reserveCapacity(count)
        for _ in 0..<count {
            replies.append(try readReply())
        }
        return replies
    }

    /// Whether the peer has closed the connection (or sent something unsolicited) while
    /// the context was idle. Checked before reusing an idle context so that a command is
    /// not sent on a connection that is already known to be dead.
    var isStale: Bool {
        let fd = handle.pointee.fd
        guard fd >= 0 else { return true }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, 0)
        if ready == 0 { return false }
        if ready < 0 { return errno != EINTR }
        var byte: UInt8 = 0
        let received = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if received < 0 {
            return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        }
        // 0: end of file. > 0: bytes nobody asked for, so the stream is out of step.
        return true
    }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let clamped = max(seconds, 0)
        self.init(tv_sec: Int(clamped), tv_usec: Int(max(attoseconds, 0) / 1_000_000_000_000))
    }
}
