import Foundation
import MariaDBClient

// The `sql` step and the top-level `sql:` section of topologies.yaml.
//
// ```yaml
// sql:
//   url: ${SHOP_SQL_URL}          # or --sql-url on `run`
// ...
//     - sql:
//         table: purchases
//         key: [orderId]
//         mode: upsert            # upsert (default with a key) | insert
//         create: true            # create the table (and missing columns) from the types
//         columns:
//           orderId: { field: orderId, type: VARCHAR(64) }
//           price: { field: price, type: DECIMAL(12,2) }
//           note: note            # column: field, type taken from the existing table
// ```

/// How a `sql` step writes rows.
public enum SQLWriteMode: String, Sendable, Hashable, CaseIterable {
    /// `INSERT … ON DUPLICATE KEY UPDATE`: one row per key, the latest record wins.
    case upsert
    /// Plain `INSERT`: one row per record (a duplicate key is an error).
    case insert
}

/// A column type a `sql` step may declare, as MariaDB/MySQL spell it.
public struct SQLColumnType: Sendable, Hashable, CustomStringConvertible {
    /// How record values are converted for the column.
    public enum Kind: Sendable, Hashable {
        /// Strings as they are; numbers and booleans as text; objects and arrays as JSON.
        case text
        /// Whole numbers (integral JSON numbers or numeric strings).
        case integer
        /// `true`/`false` as 1/0.
        case boolean
        /// Floating point.
        case double
        /// An exact decimal with this many fraction digits.
        case decimal(scale: Int)
        /// A date-time in UTC from an ISO-8601 string or epoch milliseconds.
        case dateTime
        /// A date in UTC from an ISO-8601 string or epoch milliseconds.
        case date
        /// Unknown to the engine: the value is sent as JSON gives it.
        case natural
    }

    /// The type in SQL, e.g. `DECIMAL(12,2)`.
    public let sql: String
    /// How values are converted.
    public let kind: Kind

    public var description: String { sql }

    /// Creates a type from its SQL spelling; nil unless it is one of the supported
    /// types: `VARCHAR(n)`, `CHAR(n)`, `TEXT`, `MEDIUMTEXT`, `LONGTEXT`, `JSON`, `BIGINT`,
    /// `INT`, `SMALLINT`, `TINYINT`, `BOOLEAN`, `DOUBLE`, `DECIMAL(p,s)`, `DATETIME[(fsp)]`,
    /// `TIMESTAMP[(fsp)]`, `DATE`, each optionally followed by `NOT NULL`.
    public init?(_ text: String) {
        let words = text.uppercased().split(separator: " ", omittingEmptySubsequences: true)
        guard let head = words.first else { return nil }
        let rest = words.dropFirst().joined(separator: " ")
        guard rest.isEmpty || rest == "NOT NULL" else { return nil }
        let base: Substring, args: [Int]
        if let open = head.firstIndex(of: "(") {
            guard head.hasSuffix(")") else { return nil }
            base = head[..<open]
            let inner = head[head.index(after: open)..<head.index(before: head.endIndex)]
            let parts = inner.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
            args = parts.map { $0! }
        } else {
            base = head
            args = []
        }
        let kind: Kind
        switch (base, args.count) {
        case ("VARCHAR", 1), ("CHAR", 1):
            guard (1...65_535).contains(args[0]) else { return nil }
            kind = .text
        case ("TEXT", 0), ("MEDIUMTEXT", 0), ("LONGTEXT", 0), ("JSON", 0): kind = .text
        case ("BIGINT", 0), ("INT", 0), ("INTEGER", 0), ("SMALLINT", 0), ("TINYINT", 0): kind = .integer
        case ("BOOLEAN", 0), ("BOOL", 0): kind = .boolean
        case ("DOUBLE", 0), ("FLOAT", 0): kind = .double
        case ("DECIMAL", 2):
            guard (1...65).contains(args[0]), (0...min(30, args[0])).contains(args[1]) else { return nil }
            kind = .decimal(scale: args[1])
        case ("DATETIME", 0), ("TIMESTAMP", 0): kind = .dateTime
        case ("DATETIME", 1), ("TIMESTAMP", 1):
            guard (0...6).contains(args[0]) else { return nil }
            kind = .dateTime
        case ("DATE", 0): kind = .date
        default: return nil
        }
        self.sql = ([String(head)] + (rest.isEmpty ? [] : [rest])).joined(separator: " ")
        self.kind = kind
    }

    /// The conversion for a column of the existing table, from `information_schema`.
    public static func kind(dataType: String, scale: Int?) -> Kind {
        switch dataType.lowercased() {
        case "varchar", "char", "text", "tinytext", "mediumtext", "longtext", "json", "enum", "set": return .text
        case "bigint", "int", "mediumint", "smallint", "year": return .integer
        case "tinyint", "bit": return .integer
        case "double", "float", "real": return .double
        case "decimal", "numeric": return .decimal(scale: scale ?? 0)
        case "datetime", "timestamp": return .dateTime
        case "date": return .date
        default: return .natural
        }
    }

    static let expected = "one of VARCHAR(n), CHAR(n), TEXT, MEDIUMTEXT, LONGTEXT, JSON, BIGINT, INT, SMALLINT, TINYINT, BOOLEAN, DOUBLE, DECIMAL(p,s), DATETIME(fsp), TIMESTAMP(fsp), DATE (optionally NOT NULL)"
}

/// One column of a `sql` step: the table column and the record field it takes.
public struct SQLColumnSpec: Sendable, Hashable {
    /// The column name in the table.
    public var name: String
    /// The record field (dotted paths allowed) whose value goes in the column.
    public var field: String
    /// The declared type, required with `create: true`.
    public var type: SQLColumnType?

    /// Creates a column spec.
    public init(name: String, field: String, type: SQLColumnType? = nil) {
        self.name = name
        self.field = field
        self.type = type
    }
}

/// A `sql` step: write each record as a row of a MySQL/MariaDB table, exactly once
/// per input record (see README "SQL sink").
public struct SQLSinkSpec: Sendable, Hashable {
    /// The table name.
    public var table: String
    /// The key columns (the table's primary key or a unique index); required for upsert.
    public var key: [String]
    /// How rows are written.
    public var mode: SQLWriteMode
    /// Whether the engine creates the table (and adds missing columns) at start.
    public var create: Bool
    /// The columns, in file order.
    public var columns: [SQLColumnSpec]

    /// Creates a spec.
    public init(table: String, key: [String], mode: SQLWriteMode, create: Bool, columns: [SQLColumnSpec]) {
        self.table = table
        self.key = key
        self.mode = mode
        self.create = create
        self.columns = columns
    }

    /// Whether `s` is a plain SQL identifier (letters, digits, `_`, not starting with a
    /// digit, at most 64 characters): table and column names are checked so that they
    /// can be quoted safely.
    public static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, s.unicodeScalars.count <= 64, !(first >= "0" && first <= "9") else { return false }
        return s.unicodeScalars.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" }
    }
}

extension StreamConfig {
    /// Every `sql` step of every pipeline, in file order.
    public var sqlSinks: [SQLSinkSpec] {
        pipelines.flatMap { $0.steps.compactMap { if case .sql(let s, _) = $0 { return s } else { return nil } } }
    }

    /// The position of a `sql` step's spec in ``sqlSinks`` (equal specs share the first).
    func sqlSinkIndex(of spec: SQLSinkSpec) -> Int? { sqlSinks.firstIndex(of: spec) }
}

/// How `describe` shows SQL sinks and the SQL URL.
enum SQLSinkDescription {
    /// `upsert into purchases (orderId, …) key orderId, create`.
    static func describe(_ q: SQLSinkSpec) -> String {
        let columns = q.columns.map { c in
            (c.field == c.name ? c.name : "\(c.name)=\(c.field)") + (c.type.map { " \($0.sql)" } ?? "")
        }
        var s = "\(q.mode.rawValue) into table \(q.table) (\(columns.joined(separator: ", ")))"
        if !q.key.isEmpty { s += " key \(q.key.joined(separator: ", "))" }
        if q.create { s += ", created if missing" }
        return s
    }

    /// The URL with its password masked (or a placeholder if it does not parse).
    static func maskedURL(_ text: String) -> String {
        (try? MariaDBURL(text))?.description ?? "(an invalid SQL URL)"
    }
}
