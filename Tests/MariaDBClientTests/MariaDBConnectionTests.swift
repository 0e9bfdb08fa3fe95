import Foundation
import MariaDBClient
import Testing

/// One real server for the suite (mariadb-install-db takes seconds), started on first
/// use off the cooperative pool; its watchdog stops it when the test process exits.
actor SharedMariaDB {
    static let shared = SharedMariaDB()
    private var server: LocalMariaDBServer?

    func get() async throws -> LocalMariaDBServer {
        if let server { return server }
        let started = try await LocalMariaDBServer.start(database: "clienttests")
        server = started
        return started
    }
}

@Suite(.serialized) struct MariaDBConnectionTests {
    @Test func roundTripsValuesThroughEscapedLiterals() async throws {
        let server = try await SharedMariaDB.shared.get()
        let db = MariaDBConnection(url: server.url)
        try await db.execute("CREATE TABLE t1 (id VARCHAR(64) PRIMARY KEY, n BIGINT, price DECIMAL(12,2), note TEXT, at DATETIME(3))")
        let tricky = "O'Brien \\ \"quoted\" ; DROP TABLE t1; -- ? 한국어 🎉"
        try await db.execute("INSERT INTO t1 VALUES (?, ?, ?, ?, ?)", [.text("a?'"), .int(-42), .decimal("19.99"), .text(tricky), .text("2024-05-01 12:34:56.789")])
        try await db.execute("INSERT INTO t1 VALUES (?, ?, ?, ?, ?)", [.text("b"), .null, .double(0.5), .null, .null])
        let rows = try await db.query("SELECT id, n, price, note, DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f') AS at FROM t1 ORDER BY id")
        #expect(rows.columns == ["id", "n", "price", "note", "at"])
        #expect(rows.rows.count == 2)
        #expect(rows.rows[0] == ["a?'", "-42", "19.99", tricky, "2024-05-01 12:34:56.789000"])
        #expect(rows.rows[1] == ["b", nil, "0.50", nil, nil])
        await db.close()
    }

    @Test func failedTransactionRollsBackAndServerErrorsAreNotRetryable() async throws {
        let server = try await SharedMariaDB.shared.get()
        let db = MariaDBConnection(url: server.url)
        try await db.execute("CREATE TABLE t2 (id INT PRIMARY KEY)")
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await db.transaction { db in
                try db.execute("INSERT INTO t2 VALUES (1)")
                throw Boom()
            }
        }
        do {
            try await db.transaction { db in
                try db.execute("INSERT INTO t2 VALUES (2)")
                try db.execute("INSERT INTO t2 VALUES (2)")
            }
            Issue.record("duplicate key accepted")
        } catch let error as MariaDBError {
            #expect(error.kind == .server)
            #expect(error.code == 1062)
            #expect(!error.isRetryable)
        }
        _ = try await db.transaction { db in try db.execute("INSERT INTO t2 VALUES (3)") }
        #expect(try await db.query("SELECT GROUP_CONCAT(id) FROM t2").scalar == "3")
        await db.close()
    }

    @Test func unknownColumnNamesIt() async throws {
        let server = try await SharedMariaDB.shared.get()
        let db = MariaDBConnection(url: server.url)
        do {
            _ = try await db.query("SELECT nope FROM mysql_no_such_table")
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .server)
            #expect(error.message.contains("mysql_no_such_table"))
        }
        await db.close()
    }

    @Test func pausedServerTimesOutThenTheConnectionComesBack() async throws {
        let server = try await SharedMariaDB.shared.get()
        let db = MariaDBConnection(url: server.url, connectTimeout: .seconds(1), ioTimeout: .seconds(1))
        #expect(try await db.query("SELECT 1").scalar == "1")
        server.pause()
        let started = ContinuousClock.now
        do {
            _ = try await db.query("SELECT 2")
            Issue.record("a paused server answered")
        } catch {
            #expect(error.kind == .connection)
            #expect(error.isRetryable)
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        server.resume()
        #expect(try await db.query("SELECT 3").scalar == "3")
        await db.close()
    }

    @Test func wrongPasswordIsAServerErrorWithoutThePassword() async throws {
        let server = try await SharedMariaDB.shared.get()
        var url = server.url
        url.password = "wrong-password-xyz"
        let db = MariaDBConnection(url: url)
        do {
            try await db.connect()
            Issue.record("logged in with a wrong password")
        } catch {
            #expect(error.code == 1045)
            #expect(!error.description.contains("wrong-password-xyz"))
        }
        await db.close()
    }
}
