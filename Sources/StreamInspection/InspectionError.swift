import StreamEngine
/// A problem that stops a state-store inspection, with a message meant for the
/// person at the terminal: what went wrong and what to do instead.
public struct InspectionError: Error, CustomStringConvertible, Sendable {
    /// What kind of problem it is; the command line maps it to an exit code.
    public enum Kind: Sendable, Hashable {
        /// The request cannot be served as asked (unknown store, missing option).
        case usage
        /// Reading a snapshot or the changelog failed (missing or corrupt file, Kafka unreachable).
        case io
    }

    /// The kind of problem.
    public var kind: Kind
    /// One line (possibly long) describing the problem and the way out.
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
