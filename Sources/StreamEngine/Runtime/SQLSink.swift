import Foundation
import Logging
import MariaDBClient

/// One row a `sql` step produced, waiting for its task's commit: the values in
/// column order and the input record it came from (the row-level fence).
struct SQLPendingRow: Sendable {
    /// Index of the step's spec in ``SQLSinkWriter/sinks``.
    let sink: Int
    let values: [SQLValue]
    /// The input topic and offset of the record being processed when the row was made;
    /// offset -1 for rows of periodic work (`Processor.punctuate`), which answer no input
    /// record: those are written as they come (at least once), unfenced.
    let topic: String
    let offset: Int64
}

/// The rows of one task for one commit, in processing order.
struct SQLWriteBatch: Sendable {
    private(set) var rows: [SQLPendingRow] = []
    var isEmpty: Bool { rows.isEmpty }
    mutating func add(_ row: SQLPendingRow) { rows.append(row) }
}

/// Column conversions of every `sql` step, resolved at start: the declared type,
/// else the type of the existing column.
struct SQLColumnKinds: Sendable {
    /// Per sink index, the kind of each column in column order.
    var bySink: [[SQLColumnType.Kind]] = []
}

/// Turns records into rows for one `sql` step.
struct SQLSinkStep {
    let index: Int
    let spec: SQLSinkSpec
    let kinds: [SQLColumnType.Kind]
    let isKey: [Bool]

    init(index: Int, spec: SQLSinkSpec, kinds: [SQLColumnType.Kind]?) {
        self.index = index
        self.spec = spec
        self.kinds = kinds ?? spec.columns.map { $0.type?.kind ?? .natural }
        self.isKey = spec.columns.map { spec.key.contains($0.name) }
    }

    func row(_ record: StreamRecord, topic: String, offset: Int64) throws(RecordError) -> SQLPendingRow {
        var values: [SQLValue] = []
        values.reserveCapacity(spec.columns.count)
        for (i, column) in spec.columns.enumerated() {
            let value = record.field(column.field)
            if value == nil || value!.isNull {
                if isKey[i] {
                    throw RecordError(.missingField, "sql table \(spec.table): key column '\(column.name)' needs field '\(column.field)', which the record lacks")
                }
                values.append(.null)
                continue
            }
            values.append(try Self.convert(value!, kinds[i], column: column, table: spec.table))
        }
        return SQLPendingRow(sink: index, values: values, topic: topic, offset: offset)
    }

    static func convert(_ v: JSONValue, _ kind: SQLColumnType.Kind, column: SQLColumnSpec, table: String) throws(RecordError) -> SQLValue {
        func wrong(_ expected: String) -> RecordError {
            RecordError(.wrongType, "sql table \(table): column '\(column.name)' needs \(expected) in field '\(column.field)', got \(v.serializedString())")
        }
        switch kind {
        case .text:
            if case .string(let s) = v { return .text(s) }
            return .text(v.keyText)
        case .integer:
            switch v {
            case .number(let d): if let i = Int64(exactly: d) { return .int(i) }
            case .string(let s): if let i = Int64(s) { return .int(i) }
            case .bool(let b): return .int(b ? 1 : 0)
            default: break
            }
            throw wrong("an integer")
        case .boolean:
            switch v {
            case .bool(let b): return .int(b ? 1 : 0)
            case .number(let d) where d == 0 || d == 1: return .int(Int64(d))
            case .string("true"): return .int(1)
            case .string("false"): return .int(0)
            default: throw wrong("a boolean")
            }
        case .double:
            if let d = v.doubleValue, d.isFinite { return .double(d) }
            if let s = v.stringValue, let d = Double(s), d.isFinite { return .double(d) }
            throw wrong("a number")
        case .decimal:
            if let d = v.doubleValue, d.isFinite {
                let text = "\(d)"
                return text.contains("e") ? .double(d) : .decimal(text)
            }
            if let s = v.stringValue, SQLValue.isDecimal(s) { return .decimal(s) }
            throw wrong("a decimal number")
        case .dateTime, .date:
            let millis: Int64?
            switch v {
            case .string(let s): millis = EventTime.parseISO8601(s)
            case .number(let d): millis = Int64(exactly: d.rounded())
            default: millis = nil
            }
            guard let millis, let text = sqlDateTime(millis) else { throw wrong("an ISO-8601 date-time or epoch milliseconds") }
            if case .date = kind { return .text(String(text.prefix(10))) }
            return .text(text)
        case .natural:
            switch v {
            case .string(let s): return .text(s)
            case .number(let d): return Int64(exactly: d).map(SQLValue.int) ?? .double(d)
            case .bool(let b): return .int(b ? 1 : 0)
            default: return .text(v.serializedString())
            }
        }
    }

    /// `2024-05-01 12:00:00.123` (UTC) for MariaDB's DATETIME; nil outside years 1000–9999.
    static func sqlDateTime(_ millis: Int64) -> String? {
        let iso = EventTime.formatISO8601(millis)
        guard iso.utf8.count >= 20, let year = Int(iso.prefix(4)), (1000...9999).contains(year) else { return nil }
        return String(iso.dropLast().replacingOccurrences(of: "T", with: " "))
    }
}

/// Writes the `sql` steps' rows to MySQL/MariaDB, one transaction per task and
/// commit, fenced by the task's input offsets in `stream_engine_offsets`.
///
/// The transaction locks the task's fence rows (`SELECT … FOR UPDATE`), drops
/// every row whose input record is at or below the offsets already applied,
/// writes the rest and moves the fence forward, then commits. A replay after a
/// crash (SQL committed, Kafka offsets not), a retry after a lost `COMMIT`
/// answer, or a zombie instance after a rebalance therefore never writes a row
/// twice, and no row is skipped because the offsets are only committed to Kafka
/// after this transaction.
final class SQLSinkWriter: Sendable {
    static let fenceTable = "stream_engine_offsets"

    let connection: MariaDBConnection
    let applicationId: String
    /// Every `sql` step of the configuration with where it is declared.
    let sinks: [(spec: SQLSinkSpec, location: SourceLocation)]
    let logger: Logger

    init(url: MariaDBURL, config: StreamConfig, logger: Logger) {
        self.connection = MariaDBConnection(url: url, logger: logger)
        self.applicationId = config.applicationId
        self.sinks = config.pipelines.flatMap { $0.steps.compactMap { if case .sql(let s, let l) = $0 { return (s, l) } else { return nil } } }
        self.logger = logger
    }

    /// The sink index of a spec (equal specs share one).

    /// Connects (retrying for up to `patience`), creates the fence table, and
    /// checks or creates every sink's table; returns the columns' conversions.
    ///
    /// - Throws: ``StreamEngineError`` naming a missing table or column, or a
    ///   missing unique key for upsert.
    func prepare(patience: Duration = .seconds(30)) async throws -> SQLColumnKinds {
        let deadline = ContinuousClock.now + patience
        while true {
            do {
                try await connection.connect()
                break
            } catch let error where error.isRetryable && ContinuousClock.now < deadline {
                logger.warning("cannot reach MariaDB at \(connection.url.address) yet, retrying: \(error)")
                try await Task.sleep(for: .milliseconds(500))
            } catch {
                throw StreamEngineError("cannot connect to MariaDB at \(connection.url): \(error)")
            }
        }
        let fence = Self.fenceTable
        _ = try await run {
            try $0.execute("""
                CREATE TABLE IF NOT EXISTS `\(fence)` (
                  application_id VARCHAR(249) NOT NULL, task VARCHAR(255) NOT NULL, topic VARCHAR(249) NOT NULL,
                  next_offset BIGINT NOT NULL,
                  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
                  PRIMARY KEY (application_id, task, topic)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """)
        }
        var kinds = SQLColumnKinds()
        for (spec, location) in sinks {
            kinds.bySink.append(try await prepareTable(spec, at: location))
        }
        return kinds
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (isolated MariaDBConnection) throws -> T) async throws -> T {
        do {
            return try await connection.transaction(body)
        } catch let error as StreamEngineError {
            throw error
        } catch {
            throw StreamEngineError("MariaDB at \(connection.url.address): \(error)")
        }
    }

    private func prepareTable(_ spec: SQLSinkSpec, at location: SourceLocation) async throws -> [SQLColumnType.Kind] {
        let table = spec.table
        let at = "the sql step at \(location.file):\(location.line):\(location.column)"
        return try await run { db in
            let database = try db.query("SELECT DATABASE()").scalar ?? "?"
            var existing = try Self.columns(db, table)
            if existing.isEmpty {
                guard spec.create else {
                    throw StreamEngineError("table '\(table)' does not exist in database '\(database)' (needed by \(at)); create it, or set create: true to let the engine create it")
                }
                var defs = spec.columns.map { "`\($0.name)` \($0.type!.sql)" }
                if !spec.key.isEmpty { defs.append("PRIMARY KEY (\(spec.key.map { "`\($0)`" }.joined(separator: ", ")))") }
                try db.execute("CREATE TABLE IF NOT EXISTS `\(table)` (\(defs.joined(separator: ", "))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
                existing = try Self.columns(db, table)
            } else {
                let missing = spec.columns.filter { existing[$0.name.lowercased()] == nil }
                if !missing.isEmpty {
                    guard spec.create else {
                        let names = missing.map { "'\($0.name)'" }.joined(separator: ", ")
                        throw StreamEngineError("table '\(table)' in database '\(database)' has no column \(names) (needed by \(at)); add \(missing.count == 1 ? "it" : "them"), or set create: true to let the engine add \(missing.count == 1 ? "it" : "them")")
                    }
                    for column in missing {
                        try db.execute("ALTER TABLE `\(table)` ADD COLUMN `\(column.name)` \(column.type!.sql)")
                    }
                    existing = try Self.columns(db, table)
                }
            }
            if spec.mode == .upsert {
                let unique = try db.query(
                    "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0",
                    [.text(table)])
                var indexes: [String: Set<String>] = [:]
                for row in unique.rows { indexes[row[0] ?? "", default: []].insert((row[1] ?? "").lowercased()) }
                let wanted = Set(spec.key.map { $0.lowercased() })
                guard indexes.values.contains(wanted) else {
                    throw StreamEngineError("table '\(table)' has no PRIMARY KEY or UNIQUE index on exactly (\(spec.key.joined(separator: ", "))), which upsert needs (\(at))")
                }
            }
            return spec.columns.map { c in c.type?.kind ?? existing[c.name.lowercased()] ?? .natural }
        }
    }

    /// Column name (lowercased) → conversion, of an existing table; empty if there is no such table.
    private static func columns(_ db: isolated MariaDBConnection, _ table: String) throws -> [String: SQLColumnType.Kind] {
        let result = try db.query(
            "SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_SCALE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            [.text(table)])
        var out: [String: SQLColumnType.Kind] = [:]
        for row in result.rows {
            out[(row[0] ?? "").lowercased()] = SQLColumnType.kind(dataType: row[1] ?? "", scale: row[2].flatMap { Int($0) })
        }
        return out
    }

    /// Applies one task's rows and moves its fence, in one transaction. Returns the
    /// number of rows written (0 when the fence shows the commit was applied before).
    func write(task: String, tag: CommitTag, rows: [SQLPendingRow]) async throws -> Int {
        let applicationId = self.applicationId
        let specs = sinks.map(\.spec)
        let fence = Self.fenceTable
        return try await connection.transaction { db in
            let current = try db.query(
                "SELECT topic, next_offset FROM `\(fence)` WHERE application_id = ? AND task = ? FOR UPDATE",
                [.text(applicationId), .text(task)])
            var next: [String: Int64] = [:]
            for row in current.rows { next[row[0] ?? ""] = row[1].flatMap { Int64($0) } }
            let fresh = rows.filter { $0.offset < 0 || $0.offset >= next[$0.topic] ?? 0 }
            let advances = tag.offsets.filter { $0.value + 1 > next[$0.key] ?? 0 }
            if advances.isEmpty && !fresh.contains(where: { $0.offset < 0 }) { return 0 }
            var bySink: [Int: [SQLPendingRow]] = [:]
            var order: [Int] = []
            for row in fresh {
                if bySink[row.sink] == nil { order.append(row.sink) }
                bySink[row.sink, default: []].append(row)
            }
            for sink in order {
                try Self.insert(db, specs[sink], bySink[sink]!)
            }
            for (topic, offset) in advances.sorted(by: { $0.key < $1.key }) {
                try db.execute(
                    "INSERT INTO `\(fence)` (application_id, task, topic, next_offset) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset))",
                    [.text(applicationId), .text(task), .text(topic), .int(offset + 1)])
            }
            return fresh.count
        }
    }

    /// Multi-row `INSERT` (upsert: `ON DUPLICATE KEY UPDATE`, one row per key, the last wins).
    private static func insert(_ db: isolated MariaDBConnection, _ spec: SQLSinkSpec, _ rows: [SQLPendingRow]) throws {
        var rows = rows
        if spec.mode == .upsert {
            let keyIndexes = spec.key.compactMap { k in spec.columns.firstIndex { $0.name == k } }
            var last: [[SQLValue]: Int] = [:]
            for (i, row) in rows.enumerated() { last[keyIndexes.map { row.values[$0] }] = i }
            rows = rows.enumerated().filter { pair in last[keyIndexes.map { pair.element.values[$0] }] == pair.offset }.map(\.element)
        }
        let columns = spec.columns.map { "`\($0.name)`" }.joined(separator: ", ")
        let tuple = "(" + Array(repeating: "?", count: spec.columns.count).joined(separator: ", ") + ")"
        var suffix = ""
        if spec.mode == .upsert {
            let updates = spec.columns.filter { !spec.key.contains($0.name) }.map { "`\($0.name)` = VALUES(`\($0.name)`)" }
            suffix = " ON DUPLICATE KEY UPDATE " + (updates.isEmpty ? "`\(spec.key[0])` = VALUES(`\(spec.key[0])`)" : updates.joined(separator: ", "))
        }
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(rows.count, start + 500)]
            let sql = "INSERT INTO `\(spec.table)` (\(columns)) VALUES " + Array(repeating: tuple, count: chunk.count).joined(separator: ", ") + suffix
            try db.execute(sql, chunk.flatMap(\.values))
            start += chunk.count
        }
    }

    func close() async {
        await connection.close()
    }
}
