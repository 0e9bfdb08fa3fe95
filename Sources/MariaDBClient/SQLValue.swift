/// A value bound to a `?` placeholder of a statement.
///
/// Values are sent as SQL literals: numbers as digits, text escaped by the client
/// library for the connection's character set (`mysql_real_escape_string`), so
/// nothing in a value can change the statement.
public enum SQLValue: Sendable, Hashable, CustomStringConvertible {
    /// `NULL`.
    case null
    /// An integer.
    case int(Int64)
    /// A finite double (NaN and infinities are rejected).
    case double(Double)
    /// An exact decimal number written as text, e.g. `"19.99"`; validated, sent unquoted.
    case decimal(String)
    /// A string, sent quoted and escaped (also used for dates: `"2024-05-01 12:00:00.000"`).
    case text(String)

    public var description: String {
        switch self {
        case .null: return "NULL"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .decimal(let s): return s
        case .text(let s): return "'\(s)'"
        }
    }

    /// Whether `s` is a plain decimal number: optional sign, digits, optional fraction.
    public static func isDecimal(_ s: String) -> Bool {
        var bytes = Substring(s).utf8[...]
        if bytes.first == UInt8(ascii: "-") || bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty else { return false }
        if parts.count == 2, parts[1].isEmpty { return false }
        return parts.allSatisfy { $0.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } }
    }
}

/// The rows a query returned, as text (the MySQL text protocol's form).
public struct SQLResult: Sendable {
    /// Column names, in order.
    public let columns: [String]
    /// Each row's values in column order; `nil` is SQL `NULL`.
    public let rows: [[String?]]

    /// Creates a result.
    public init(columns: [String], rows: [[String?]]) {
        self.columns = columns
        self.rows = rows
    }

    /// The value of `column` in row `row`; `nil` for NULL or an unknown column.
    public func value(_ row: Int, _ column: String) -> String? {
        guard let i = columns.firstIndex(of: column) else { return nil }
        return rows[row][i]
    }

    /// The first column of the first row, if any.
    public var scalar: String? { rows.first?.first ?? nil }
}
