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

extension ConfigValidator {
    static let identifierExpected = "an SQL identifier of letters, digits and '_' (at most 64 characters)"

    /// The top-level `sql:` section: `{ url: mysql://… }`.
    func sqlSection(_ node: ConfigNode) -> String? {
        guard let m = map(node, "'sql'", expected: "a map with 'url'") else { return nil }
        checkKeys(m, allowed: ["url"], in: "sql")
        let expected = "a URL such as mysql://user:${SQL_PASSWORD}@127.0.0.1:3306/shop"
        guard let url = require(m, "url", in: "sql", expected: expected) else { return nil }
        return string(url, "url", expected: expected)
    }

    private func identifier(_ node: ConfigNode, _ what: String) -> String? {
        guard let s = string(node, what, expected: Self.identifierExpected) else { return nil }
        guard SQLSinkSpec.isIdentifier(s) else {
            report(node.location, "invalid \(what) '\(s)'; expected \(Self.identifierExpected)")
            return nil
        }
        return s
    }

    /// A `sql` step.
    func sqlStep(_ node: ConfigNode) -> SQLSinkSpec? {
        guard let m = map(node, "'sql'", expected: "a map with 'table', 'columns' and optionally 'key', 'mode' and 'create'") else { return nil }
        checkKeys(m, allowed: ["table", "key", "mode", "create", "columns"], in: "sql")
        var ok = true
        let table = require(m, "table", in: "sql", expected: "the table name").flatMap { identifier($0, "table") }
        if table == nil { ok = false }

        var create = false
        if let v = m["create"] {
            if case .bool(let b) = v.value { create = b } else {
                report(v.location, "invalid value \(v.shortDescription) for 'create'; expected true or false")
                ok = false
            }
        }

        var columns: [SQLColumnSpec] = []
        if let v = require(m, "columns", in: "sql", expected: "a map of column name to record field, or to { field, type }"),
           let cm = map(v, "'columns'", expected: "a map of column name to record field, or to { field, type }") {
            if cm.entries.isEmpty {
                report(v.location, "'columns' is empty; expected at least one column")
                ok = false
            }
            for entry in cm.entries {
                guard SQLSinkSpec.isIdentifier(entry.key) else {
                    report(entry.keyLocation, "invalid column name '\(entry.key)'; expected \(Self.identifierExpected)")
                    ok = false
                    continue
                }
                if case .mapping = entry.value.kind {
                    guard let cmap = map(entry.value, "column '\(entry.key)'", expected: "{ field, type }") else { ok = false; continue }
                    checkKeys(cmap, allowed: ["field", "type"], in: "column '\(entry.key)'")
                    let field = cmap["field"].map { name($0, "columns.\(entry.key).field", .field) } ?? entry.key
                    var type: SQLColumnType?
                    if let t = cmap["type"], let text = string(t, "columns.\(entry.key).type", expected: SQLColumnType.expected) {
                        type = SQLColumnType(text)
                        if type == nil {
                            let cut = text.contains("(") && !text.contains(")")
                            report(t.location, "unsupported column type '\(text)' for column '\(entry.key)'; expected \(SQLColumnType.expected)"
                                + (cut ? " — a comma inside { … } ends the value: quote it, as in type: \"DECIMAL(12,2)\"" : ""))
                        }
                    }
                    if field == nil || (cmap["type"] != nil && type == nil) { ok = false; continue }
                    if create && type == nil {
                        report(entry.keyLocation, "column '\(entry.key)' has no 'type', which 'create: true' needs; expected { field: …, type: … } such as { field: \(field!), type: VARCHAR(64) }")
                        ok = false
                    }
                    columns.append(SQLColumnSpec(name: entry.key, field: field!, type: type))
                } else if let field = name(entry.value, "columns.\(entry.key)", .field) {
                    if create {
                        report(entry.keyLocation, "column '\(entry.key)' has no 'type', which 'create: true' needs; expected { field: \(field), type: … } such as VARCHAR(64) or DECIMAL(12,2)")
                        ok = false
                    }
                    columns.append(SQLColumnSpec(name: entry.key, field: field))
                } else {
                    ok = false
                }
            }
        } else {
            ok = false
        }
        let names = Set(columns.map { $0.name.lowercased() })
        if names.count != columns.count, let loc = m.keyLocation("columns") {
            report(loc, "two columns differ only in case; expected distinct column names (MariaDB compares them case-insensitively)")
            ok = false
        }

        var key: [String] = []
        if let v = m["key"] {
            let (items, listOK) = stringList(v, "key", item: "key", rule: .field)
            ok = ok && listOK
            for (k, loc) in items {
                if !columns.contains(where: { $0.name == k }) && !columns.isEmpty {
                    report(loc, "key column '\(k)' is not among the columns; expected one of \(ConfigSuggest.list(columns.map(\.name)))")
                    ok = false
                }
                key.append(k)
            }
        }
        var mode: SQLWriteMode = key.isEmpty ? .insert : .upsert
        if let v = m["mode"] {
            if let chosen = choice(v, "mode", SQLWriteMode.self) { mode = chosen } else { ok = false }
        }
        if mode == .upsert && key.isEmpty && m["key"] == nil {
            report(m.location, "sql mode 'upsert' needs 'key'; expected key: [column, …] (the table's primary key or a unique index)")
            ok = false
        }
        if create && key.isEmpty && mode == .insert {
            // Fine: a table without a primary key is allowed for insert.
        }
        guard ok, let table else { return nil }
        return SQLSinkSpec(table: table, key: key, mode: mode, create: create, columns: columns)
    }
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
