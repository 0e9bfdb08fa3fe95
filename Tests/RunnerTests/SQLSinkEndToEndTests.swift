import Foundation
import MariaDBClient
import RedisClient
import StreamEngine
import Testing
import Topologies

/// The shipped topologies.yaml run as a user runs it: a `dev-broker` process with
/// only the input topics (`run` has the engine's own topics created), `generate` producing a seeded event log at a fixed rate, and
/// `stream-engine run --sql-url …` killed with SIGKILL in the middle and started
/// again. Table `purchases` must then hold every valid purchase exactly once.
@Suite("stream-engine run --sql-url: purchases exactly once across a SIGKILL", .serialized)
struct SQLSinkEndToEndTests {
    @Test("SIGKILL mid-run and a restart: purchases holds every valid purchase once (count, distinct orderId, sum of quantity from the topic itself)")
    func killAndRestart() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let mariadb = try await LocalMariaDBServer.start(database: "shop")
        defer { mariadb.close() }
        // A Redis of the test's own: a private one of the killed run would outlive it.
        let redis = try LocalRedisServer()
        defer { redis.stop() }
        let topologies = "\(repositoryRoot)/topologies.yaml"
        let config = try ConfigLoader.load(path: topologies, registry: shopOperatorRegistry().names, environment: [:])

        // Only the input topics, as a user starts it: the engine asks the dev-broker for the rest.
        let topics = config.inputTopics
        let bootstrapFile = dir.file("bootstrap")
        let broker = try CLIProcess(["dev-broker", "--brokers", "3", "--bootstrap-file", bootstrapFile] + Set(topics).sorted().flatMap { ["--topic", "\($0):4"] })
        defer { broker.terminate() }
        let deadline = ContinuousClock.now + .seconds(30)
        while !FileManager.default.fileExists(atPath: bootstrapFile), broker.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let bootstrap = try String(contentsOfFile: bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)

        // 20,000 events at 4,000/s: the job is killed while purchases still arrive.
        let generator = try CLIProcess(["generate", "--events", "20000", "--rate", "4000", "--seed", "7", "--bootstrap-servers", bootstrap])
        defer { generator.terminate() }
        let url = mariadb.url
        let runArgs = ["run", "--config", topologies, "--bootstrap-servers", bootstrap, "--sql-url", url.urlString, "--redis-url", "redis://127.0.0.1:\(redis.port)/0", "--state-dir", dir.file("state")]
        let first = try CLIProcess(runArgs)
        defer { first.terminate() }

        let db = MariaDBConnection(url: url)
        var partial = 0
        let killBy = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < killBy, first.isRunning {
            partial = (try? await Self.counts(db).rows) ?? 0
            if partial >= 50 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(first.isRunning, "the first run ended by itself: \(first.outputSoFar)")
        first.signal(SIGKILL)
        let killed = try await first.wait(timeout: .seconds(30))
        #expect(killed.status != 0)
        partial = try await Self.counts(db).rows
        #expect(!(killed.stdout + killed.stderr).contains(mariadb.password), "the password was printed")

        let generated = try await generator.wait(timeout: .seconds(120))
        #expect(generated.status == 0, "\(generated)")

        let second = try CLIProcess(runArgs + ["--stop-at-end"])
        let result = try await second.wait(timeout: .seconds(300))
        #expect(result.status == 0, "\(result)")
        #expect(!(result.stdout + result.stderr).contains(mariadb.password), "the password was printed")

        // What the table must hold, computed from the purchases topic itself with kcat.
        let dump = try await runTool("/usr/bin/kcat", ["-C", "-b", bootstrap, "-t", "purchases", "-e", "-q", "-f", "%s\\n"], timeout: .seconds(60))
        #expect(dump.status == 0, "\(dump)")
        var quantityByOrder: [String: Int] = [:]
        var validCount = 0
        for line in dump.stdout.split(separator: "\n") {
            guard let purchase = Self.validPurchase(line) else { continue }
            validCount += 1
            quantityByOrder[purchase.orderId] = purchase.quantity
        }
        #expect(validCount > 500, "the seeded log holds few purchases: \(validCount)")
        let final = try await Self.counts(db)
        #expect(partial > 0 && partial < final.rows, "the kill came mid-run: \(partial) of \(final.rows) rows before it")
        print("purchases after SIGKILL + restart: \(partial) rows at the kill, \(final.rows) rows / \(final.distinct) distinct orderId / \(final.units) units at the end; the topic holds \(validCount) valid purchases, \(quantityByOrder.values.reduce(0, +)) units")
        #expect(final.rows == quantityByOrder.count)
        #expect(final.distinct == quantityByOrder.count)
        #expect(final.units == quantityByOrder.values.reduce(0, +))
        #expect(validCount == quantityByOrder.count, "the generator wrote an orderId twice")
        await db.close()
        broker.signal(SIGTERM)
        _ = try? await broker.wait(timeout: .seconds(30))
    }

    static let sqlOnlyYAML = """
        application.id: sql-only
        topologies:
          - name: records
            source: { topics: [orders], required: { id: string } }
            steps:
              - sql:
                  table: orders
                  key: [id]
                  create: true
                  columns: { id: { field: id, type: VARCHAR(32) } }
        """

    @Test("run without --sql-url starts a private mariadbd, prints its URL without the password, and removes it on SIGTERM and on SIGKILL alike", arguments: [SIGTERM, SIGKILL])
    func privateServerGoesAway(signal: Int32) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let file = try dir.write("sql-only.yaml", Self.sqlOnlyYAML)
        let run = try CLIProcess(["run", "--config", file, "--state-dir", dir.file("state")])
        defer { run.terminate() }
        let started = try await run.waitForOutput(timeout: .seconds(120)) { _, err in err.contains("running 1 pipelines") }
        #expect(started, "\(run.outputSoFar)")
        let line = try #require(run.outputSoFar.stdout.split(separator: "\n").first { $0.hasPrefix("local mariadbd: ") }, "\(run.outputSoFar)")
        let match = try #require(line.firstMatch(of: /mysql:\/\/streamengine:\*\*\*@127\.0\.0\.1:([0-9]+)\/streamengine \(data in (.+)\)/), "\(line)")
        let folder = String(match.2)
        #expect(FileManager.default.fileExists(atPath: "\(folder)/data"))
        run.signal(signal)
        let r = try await run.wait(timeout: .seconds(60))
        #expect(signal == SIGKILL || r.status == 0, "\(r)")
        // The server and its folder are gone: at once after SIGTERM, within seconds after SIGKILL (its watchdog).
        let deadline = ContinuousClock.now + .seconds(40)
        while FileManager.default.fileExists(atPath: folder), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(!FileManager.default.fileExists(atPath: folder), "\(folder) is still there")
        let port = try #require(Int(match.1))
        let probe = MariaDBConnection(url: MariaDBURL(host: "127.0.0.1", port: port, user: "streamengine", database: "streamengine"), connectTimeout: .seconds(1))
        await #expect(throws: MariaDBError.self) { try await probe.connect() }
        await probe.close()
    }

    static func counts(_ db: MariaDBConnection) async throws -> (rows: Int, distinct: Int, units: Int) {
        let r = try await db.query("SELECT COUNT(*), COUNT(DISTINCT orderId), COALESCE(SUM(quantity), 0) FROM purchases")
        return (Int(r.rows[0][0] ?? "") ?? -1, Int(r.rows[0][1] ?? "") ?? -1, Int(r.rows[0][2] ?? "") ?? -1)
    }

    /// A purchase as topologies.yaml's `required` defines one (strings, a number, an
    /// integer and an ISO-8601 timestamp), checked with Foundation alone.
    static func validPurchase(_ line: Substring) -> (orderId: String, quantity: Int)? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        for field in ["orderId", "userId", "productId", "category", "timestamp"] where !(object[field] is String) { return nil }
        guard let price = object["price"] as? NSNumber, price.doubleValue.isFinite,
              let quantity = object["quantity"] as? NSNumber, quantity.doubleValue == quantity.doubleValue.rounded(),
              !(object["quantity"] is String) else { return nil }
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        let ts = object["timestamp"] as! String
        guard iso.date(from: ts) != nil || plain.date(from: ts) != nil else { return nil }
        return (object["orderId"] as! String, quantity.intValue)
    }
}
