/// A position in a configuration file: file name, 1-based line and 1-based column.
///
/// Line and column are 0 only for problems that concern the file as a whole
/// (for example when it cannot be read).
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// The file name as given to the loader (for example `topologies.yaml`).
    public var file: String
    /// 1-based line number (0 when unknown).
    public var line: Int
    /// 1-based column number, counted in Unicode scalars (0 when unknown).
    public var column: Int

    /// Creates a location.
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`, or just `file` when the position is unknown.
    public var description: String {
        line > 0 ? "\(file):\(line):\(column)" : file
    }
}

/// One problem found while loading a configuration file.
///
/// Printed in the conventional compiler format:
/// `topologies.yaml:12:9: error: unknown step 'agregate'; expected one of ...`.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// The file the problem is in.
    public var file: String
    /// 1-based line of the offending node (0 when the problem concerns the whole file).
    public var line: Int
    /// 1-based column of the offending node (0 when the problem concerns the whole file).
    public var column: Int
    /// What is wrong and what was expected instead.
    public var message: String

    /// Creates a diagnostic.
    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// Creates a diagnostic at a location.
    public init(at location: SourceLocation, message: String) {
        self.init(file: location.file, line: location.line, column: location.column, message: message)
    }

    /// The position of the problem.
    public var location: SourceLocation {
        SourceLocation(file: file, line: line, column: column)
    }

    /// `file:line:column: error: message`.
    public var description: String {
        "\(location): error: \(message)"
    }
}

/// The error thrown by ``ConfigLoader``: every problem found in the file, in file order.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    /// All problems found, sorted by line and column.
    public var diagnostics: [ConfigDiagnostic]

    /// Creates the error from a list of diagnostics.
    public init(diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = diagnostics
    }

    /// One diagnostic per line, followed by a summary line when there is more than one.
    public var description: String {
        var lines = diagnostics.map(\.description)
        if diagnostics.count > 1 {
            lines.append("\(diagnostics.count) errors")
        }
        return lines.joined(separator: "\n")
    }
}
