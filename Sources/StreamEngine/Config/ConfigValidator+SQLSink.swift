import Foundation

// The `sql:` section and `sql` steps (the model is in SQLSinkConfig.swift).

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
