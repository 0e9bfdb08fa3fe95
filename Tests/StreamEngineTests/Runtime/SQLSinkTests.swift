import Foundation
import KafkaClient
import MariaDBClient
import Testing
@testable import StreamEngine
import StreamEngineTesting

/// One real mariadbd for the suite (mariadb-install-db takes seconds), started on first
/// use off the cooperative pool; every test uses its own tables and application id.
private actor SuiteMariaDB {
    static let shared = SuiteMariaDB()
    private var server: LocalMariaDBServer?

    func get() async throws -> LocalMariaDBServer {
        if let server { return server }
        let started = try await LocalMariaDBServer.start(database: "enginetests")
        server = started
        return started
    }
}

@Suite("Engine: sql sink into a real MariaDB", .serialized)
struct SQLSinkTests {
    static func yaml(app: String, table: String, mode: String = "upsert", create: Bool = true, url: String, commitMs: Int = 10) -> String {
        let key = mode == "upsert" ? "key: [orderId]" : ""
        return """
        application.id: \(app)
        sql: { url: "\(url)" }
        defaults:
          commit.interval.ms: \(commitMs)
        topologies:
          - name: records
            source:
              topics: [purchases]
              timestamp: timestamp
              required: { orderId: string, userId: string, price: number, quantity: integer, timestamp: string }
            steps:
              - sql:
                  table: \(table)
                  \(key)
                  mode: \(mode)
                  create: \(create)
                  columns:
                    orderId: { field: orderId, type: VARCHAR(64) }
                    userId: { field: userId, type: VARCHAR(64) }
                    category: { field: category, type: VARCHAR(64) }
                    price: { field: price, type: "DECIMAL(12,2)" }
                    quantity: { field: quantity, type: INT }
                    purchasedAt: { field: timestamp, type: DATETIME(3) }
        """
    }

    /// `n` purchases spread over users, with quantities 1...5.
    static func purchases(_ n: Int, from start: Int = 0) -> [(key: String?, value: String)] {
        (start..<start + n).map { i in
            let millis = 1_734_177_600_000 + Int64(i) * 1000 + Int64(i % 1000)
            let ts = EventTime.formatISO8601(millis)
            return ("u\(i % 37)", #"{"orderId":"o-\#(i)","userId":"u\#(i % 37)","category":"c\#(i % 5)","price":\#(i % 50).5,"quantity":\#(1 + i % 5),"timestamp":"\#(ts)"}"#)
        }
    }

    static func counts(_ db: MariaDBConnection, _ table: String) async throws -> (rows: Int, distinct: Int, units: Int) {
        let r = try await db.query("SELECT COUNT(*), COUNT(DISTINCT orderId), COALESCE(SUM(quantity), 0) FROM `\(table)`")
        let row = r.rows[0]
        return (Int(row[0] ?? "") ?? -1, Int(row[1] ?? "") ?? -1, Int(row[2] ?? "") ?? -1)
    }

    @Test("A hand-written event list lands exactly once, with the declared SQL types; bad records go to the dead-letter topic")
    func landsExactlyOnceWithTypes() async throws {
        let server = try await SuiteMariaDB.shared.get()
        let h = try EngineTestHarness()
        try h.createTopic("purchases", partitions: 2)
        try await h.produce("purchases", [
            ("u1", #"{"orderId":"o-1","userId":"u1","category":"shoes","price":19.99,"quantity":2,"timestamp":"2024-12-14T12:00:00.123Z"}"#),
            ("u2", #"{"orderId":"o-2","userId":"O'Brien \"x\" 한","category":"books","price":5,"quantity":1,"timestamp":"2024-12-14T13:30:00Z"}"#),
            ("u1", #"{"orderId":"o-3","userId":"u1","price":1234567.891,"quantity":7,"timestamp":"2024-12-15T00:00:00.5Z"}"#),
            ("u3", #"{"orderId":"o-4","userId":"u3","category":"toys","price":9.5,"quantity":"two","timestamp":"2024-12-14T12:00:00Z"}"#),
            ("u3", #"{"userId":"u3","category":"toys","price":9.5,"quantity":1,"timestamp":"2024-12-14T12:00:00Z"}"#),
            ("u1", #"{"orderId":"o-1","userId":"u1","category":"shoes","price":19.99,"quantity":2,"timestamp":"2024-12-14T12:00:00.123Z"}"#),
        ], partition: 0)
        let config = try h.config(Self.yaml(app: "sql-types", table: "typed_purchases", url: server.url.urlString))
        let rt = try await h.runToEnd(config)
        #expect(rt.stats.deadLettered == 2)

        let db = MariaDBConnection(url: server.url)
        let rows = try await db.query("""
            SELECT orderId, userId, category, price, quantity, DATE_FORMAT(purchasedAt, '%Y-%m-%d %H:%i:%s.%f') FROM typed_purchases ORDER BY orderId
            """)
        #expect(rows.rows.map { $0.map { $0 ?? "NULL" } } == [
            ["o-1", "u1", "shoes", "19.99", "2", "2024-12-14 12:00:00.123000"],
            ["o-2", "O'Brien \"x\" 한", "books", "5.00", "1", "2024-12-14 13:30:00.000000"],
            ["o-3", "u1", "NULL", "1234567.89", "7", "2024-12-15 00:00:00.500000"],
        ])
        let types = try await db.query("""
            SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'typed_purchases' ORDER BY ORDINAL_POSITION
            """)
        #expect(types.rows.map { "\($0[0]!) \($0[1]!)" } == [
            "orderId varchar(64)", "userId varchar(64)", "category varchar(64)", "price decimal(12,2)", "quantity int(11)", "purchasedAt datetime(3)",
        ])
        let key = try await db.query("SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'typed_purchases' AND INDEX_NAME = 'PRIMARY'")
        #expect(key.rows == [["orderId"]])
        // The fence holds the next input offset of the task that wrote the rows.
        let fence = try await db.query("SELECT task, topic, next_offset FROM stream_engine_offsets WHERE application_id = 'sql-types'")
        #expect(fence.rows == [["records-0", "purchases", "6"]])
        await db.close()
    }

    @Test("Crash after the SQL commit and before the offset commit, then a rerun: no duplicate, no loss (insert mode, no key to hide duplicates)")
    func crashAfterSQLCommit() async throws {
        let server = try await SuiteMariaDB.shared.get()
        let h = try EngineTestHarness()
        try h.createTopic("purchases", partitions: 4)
        let input = Self.purchases(2000)
        try await h.produce("purchases", input)
        let config = try h.config(Self.yaml(app: "sql-crash", table: "crash_purchases", mode: "insert", url: server.url.urlString))
        await #expect(throws: SimulatedCrash.self) {
            try await h.runToEnd(config, batchSize: 50, fault: FaultInjection(commit: 2, point: .afterSQLWrite))
        }
        let db = MariaDBConnection(url: server.url)
        let partial = try await Self.counts(db, "crash_purchases")
        #expect(partial.rows > 0 && partial.rows < 2000, "the crash left a partial table behind")
        #expect(partial.rows == partial.distinct)

        try await h.runToEnd(config, batchSize: 170)
        let final = try await Self.counts(db, "crash_purchases")
        #expect(final.rows == 2000)
        #expect(final.distinct == 2000)
        #expect(final.units == input.indices.reduce(0) { $0 + 1 + $1 % 5 })
        await db.close()
    }

    @Test("MariaDB frozen for 10 s (SIGSTOP) while records keep arriving: commits pause and retry, and the table ends exact")
    func pausedServer() async throws {
        let server = try await SuiteMariaDB.shared.get()
        let h = try EngineTestHarness()
        try h.createTopic("purchases", partitions: 4)
        try await h.produce("purchases", Self.purchases(1000))
        let config = try h.config(Self.yaml(app: "sql-pause", table: "paused_purchases", mode: "insert", url: server.url.urlString))
        let rt = h.runtime(config, stopAtEnd: false, batchSize: 100)
        let run = Task { try await rt.run() }
        let db = MariaDBConnection(url: server.url)
        try await waitFor("the first 1,000 rows") { try await Self.counts(db, "paused_purchases").rows == 1000 }

        server.pause()
        let pausedAt = ContinuousClock.now
        try await h.produce("purchases", Self.purchases(1500, from: 1000))
        try await Task.sleep(until: pausedAt + .seconds(10))
        server.resume()

        try await waitFor("all 2,500 rows after the pause") { try await Self.counts(db, "paused_purchases").rows >= 2500 }
        rt.stop()
        try await run.value
        let final = try await Self.counts(db, "paused_purchases")
        #expect(final.rows == 2500)
        #expect(final.distinct == 2500)
        await db.close()
    }

    @Test("Without create: true a missing column or table stops the run at start with an error naming it")
    func missingColumnOrTable() async throws {
        let server = try await SuiteMariaDB.shared.get()
        let h = try EngineTestHarness()
        try h.createTopic("purchases", partitions: 1)
        try await h.produce("purchases", Self.purchases(3))
        let db = MariaDBConnection(url: server.url)
        try await db.execute("CREATE TABLE narrow_purchases (orderId VARCHAR(64) PRIMARY KEY, userId VARCHAR(64), price DECIMAL(12,2), quantity INT, purchasedAt DATETIME(3))")

        let config = try h.config(Self.yaml(app: "sql-missing", table: "narrow_purchases", create: false, url: server.url.urlString))
        do {
            try await h.runToEnd(config, timeout: .seconds(60))
            Issue.record("the run started without the column")
        } catch let error as StreamEngineError {
            #expect(error.message.contains("table 'narrow_purchases'"))
            #expect(error.message.contains("no column 'category'"))
            #expect(error.message.contains("test.yaml:"))
        }
        #expect(try await Self.counts(db, "narrow_purchases").rows == 0)

        let noTable = try h.config(Self.yaml(app: "sql-missing", table: "absent_purchases", create: false, url: server.url.urlString))
        do {
            try await h.runToEnd(noTable, timeout: .seconds(60))
            Issue.record("the run started without the table")
        } catch let error as StreamEngineError {
            #expect(error.message.contains("table 'absent_purchases' does not exist"))
        }
        await db.close()
    }

    @Test("The fence: a replay, a retry after a lost COMMIT answer and a zombie's stale commit write nothing twice; an overlapping replay writes only the new rows")
    func fenceSemantics() async throws {
        let server = try await SuiteMariaDB.shared.get()
        let h = try EngineTestHarness()
        let config = try h.config(Self.yaml(app: "sql-fence", table: "fenced_purchases", mode: "insert", url: server.url.urlString))
        let writer = SQLSinkWriter(url: server.url, config: config, logger: h.logger)
        _ = try await writer.prepare()
        func rows(_ offsets: ClosedRange<Int64>) -> [SQLPendingRow] {
            offsets.map { SQLPendingRow(sink: 0, values: [.text("o-\($0)"), .text("u"), .null, .decimal("1.50"), .int(1), .text("2024-12-14 12:00:00.000")], topic: "purchases", offset: $0) }
        }
        let task = "records-3"
        #expect(try await writer.write(task: task, tag: CommitTag(["purchases": 9]), rows: rows(0...9)) == 10)
        // The same commit again (a replay after a crash, or a retry whose COMMIT did land).
        #expect(try await writer.write(task: task, tag: CommitTag(["purchases": 9]), rows: rows(0...9)) == 0)
        // An older owner's commit of fewer records (a zombie after a rebalance).
        #expect(try await writer.write(task: task, tag: CommitTag(["purchases": 4]), rows: rows(0...4)) == 0)
        // A replay that reaches further: only the records after the fence are written.
        #expect(try await writer.write(task: task, tag: CommitTag(["purchases": 14]), rows: rows(5...14)) == 5)
        // Another task has a fence of its own.
        #expect(try await writer.write(task: "records-1", tag: CommitTag(["purchases": 0]), rows: [SQLPendingRow(sink: 0, values: [.text("x-0"), .null, .null, .null, .null, .null], topic: "purchases", offset: 0)]) == 1)
        let db = MariaDBConnection(url: server.url)
        let counts = try await Self.counts(db, "fenced_purchases")
        #expect(counts.rows == 16 && counts.distinct == 16)
        let fence = try await db.query("SELECT task, next_offset FROM stream_engine_offsets WHERE application_id = 'sql-fence' ORDER BY task")
        #expect(fence.rows == [["records-1", "1"], ["records-3", "15"]])
        await db.close()
        await writer.close()
    }

    func waitFor(_ what: String, timeout: Duration = .seconds(90), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw StreamEngineError("timed out waiting for \(what)")
    }
}

@Suite("Config: sql steps")
struct SQLSinkConfigTests {
    func load(_ steps: String, top: String = "") throws(ConfigErrors) -> StreamConfig {
        try ConfigLoader.load(yaml: """
            application.id: app
            \(top)
            topologies:
              - name: p
                source: { topics: [t] }
                steps:
            \(steps)
            """, file: "t.yaml", registry: NameRegistry(), environment: ["PW": "s3cret"])
    }

    @Test func parsesColumnsTypesAndURLWithEnvironment() throws {
        let config = try load("""
                  - sql:
                      table: purchases
                      key: [orderId]
                      create: true
                      columns:
                        orderId: { field: orderId, type: VARCHAR(64) }
                        price: { field: price, type: "decimal(12,2)" }
                        at: { field: timestamp, type: DATETIME(3) NOT NULL }
            """, top: "sql: { url: \"mysql://shop:${PW}@db:3306/shop\" }")
        #expect(config.sqlURL == "mysql://shop:s3cret@db:3306/shop")
        let spec = try #require(config.sqlSinks.first)
        #expect(spec.mode == .upsert)
        #expect(spec.columns.map(\.name) == ["orderId", "price", "at"])
        #expect(spec.columns[1].type?.kind == .decimal(scale: 2))
        #expect(spec.columns[2].type?.sql == "DATETIME(3) NOT NULL")
        #expect(TopologyDescriber.text(config).contains("mysql://shop:***@db:3306/shop"))
        #expect(!TopologyDescriber.text(config).contains("s3cret"))
    }

    @Test func reportsProblemsWithLines() throws {
        do {
            _ = try load("""
                      - sql:
                          table: "purchases; DROP"
                          mode: upsert
                          create: true
                          columns:
                            orderId: orderId
                            price: { field: price, type: MONEY }
                """)
            Issue.record("accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("t.yaml:8:"))
            #expect(text.contains("invalid table 'purchases; DROP'"))
            #expect(text.contains("column 'orderId' has no 'type', which 'create: true' needs"))
            #expect(text.contains("unsupported column type 'MONEY'"))
            #expect(text.contains("sql mode 'upsert' needs 'key'"))
        }
    }
}
