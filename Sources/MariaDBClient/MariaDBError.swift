/// An error from ``MariaDBConnection`` or ``LocalMariaDBServer``.
public struct MariaDBError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure it is, which says whether retrying can help.
    public enum Kind: Sendable, Hashable {
        /// The server could not be reached, or the connection broke (client errors
        /// 2000–2999, a killed connection, a server shutting down). The connection is
        /// dropped; the next call reconnects. Whether a statement that failed this way
        /// took effect is unknown.
        case connection
        /// The server rolled the transaction back because of a deadlock or a lock wait
        /// timeout; running the transaction again can succeed.
        case transient
        /// The server rejected the statement (syntax, unknown table or column,
        /// duplicate key, access denied, …): retrying will not help.
        case server
        /// A bad URL, parameter or value.
        case invalidArgument
        /// The connection was closed with ``MariaDBConnection/close()``.
        case closed
        /// Starting or stopping a ``LocalMariaDBServer`` failed.
        case localServer
    }

    /// What kind of failure it is.
    public let kind: Kind
    /// The server's or client library's error number, when there is one.
    public let code: UInt32?
    /// The SQLSTATE, when the server sent one.
    public let sqlState: String?
    /// What went wrong, with the server address; never a password.
    public let message: String

    /// Creates an error.
    public init(kind: Kind, code: UInt32? = nil, sqlState: String? = nil, message: String) {
        self.kind = kind
        self.code = code
        self.sqlState = sqlState
        self.message = message
    }

    /// Whether running the operation again may succeed (``Kind/connection`` or ``Kind/transient``).
    public var isRetryable: Bool { kind == .connection || kind == .transient }

    /// The message, with the error number when there is one.
    public var description: String {
        code.map { "\(message) (error \($0)\(sqlState.map { ", SQLSTATE \($0)" } ?? ""))" } ?? message
    }
}
