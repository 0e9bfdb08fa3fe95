/// An error from ``RedisConnection``, ``RedisURL`` or ``LocalRedisServer``.
public struct RedisError: Error, CustomStringConvertible, Sendable, Hashable {
    /// What went wrong.
    public enum Kind: Sendable, Hashable {
        /// Nothing listens at the address (or the host is unreachable).
        case connectionRefused
        /// A read or write on the socket failed, or the server closed the connection.
        case io
        /// The bytes received are not valid RESP.
        case `protocol`
        /// The server answered with an error reply (for example `WRONGTYPE ...`,
        /// `NOAUTH ...`, or an aborted transaction). The connection stays usable.
        case server
        /// Connecting or waiting for a reply took longer than the configured timeout.
        case timeout
        /// The connection was closed with ``RedisConnection/close()``.
        case closed
        /// The caller passed something unusable: an invalid URL, an empty command.
        case invalidArgument
    }

    /// What went wrong.
    public let kind: Kind
    /// A human-readable explanation. For ``Kind/server`` it is the server's error
    /// text verbatim (for example `"WRONGTYPE Operation against a key ..."`); for
    /// connection errors it names the address, as in
    /// `"redis at 127.0.0.1:6390: Connection refused"`.
    public let message: String

    /// Creates an error.
    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    /// `RedisError(<kind>): <message>`.
    public var description: String {
        "RedisError(\(kind)): \(message)"
    }
}
