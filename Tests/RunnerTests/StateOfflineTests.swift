import Foundation
import StreamEngine
import Testing

/// `stream-engine state` on snapshot files alone: no Kafka, no Redis.
@Suite("stream-engine state on local snapshots")
struct StateOfflineTests {
    static let yaml = """
        application.id: shop
        topologies:
          - name: views
            source:
              topics: [views]
              key: user
            steps:
              - aggregate: { store: views-per-user, aggregator: count }
        """

    /// A config file and a state directory with snapshots of `views-per-user`:
    /// partition 0 holds alice, anna, bob; partition 1 holds carol (with a TTL) and dave.
    struct Fixture {
        let dir: TemporaryDirectory
        let config: String
        let stateDir: String

        init() throws {
            dir = try TemporaryDirectory()
            config = try dir.write("topologies.yaml", StateOfflineTests.yaml)
            stateDir = dir.file("state")
            let p0: [String: StoreEntry] = ["alice": StoreEntry(value: 3), "anna": StoreEntry(value: 1), "bob": StoreEntry(value: ["n": 2, "tags": ["x"]])]
            let p1: [String: StoreEntry] = ["carol": StoreEntry(value: 7, expiresAt: 1_733_000_000_000), "dave": StoreEntry(value: 4)]
            for (p, entries) in [(Int32(0), p0), (1, p1)] {
                try StoreSnapshot(store: "views-per-user", partition: p, changelogOffset: Int64(entries.count), inputOffsets: ["views": 10], entries: entries)
                    .write(to: snapshotPath(p))
            }
        }

        func snapshotPath(_ p: Int32) -> String {
            StoreSnapshot.path(stateDir: stateDir, applicationId: "shop", store: "views-per-user", partition: p)
        }

        func state(_ args: String...) async throws -> CLIResult {
            try await cli(["state"] + args + ["--config", config, "--state-dir", stateDir])
        }
    }

    @Test("get prints the key's value in a table and exits 0")
    func getFound() async throws {
        let f = try Fixture()
        defer { f.dir.cleanup() }
        let r = try await f.state("get", "views-per-user", "bob")
        #expect(r.status == 0, "\(r)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("KEY") == true, "\(r.stdout)")
        #expect(lines.dropFirst().first.map { $0.split(separator: " ", omittingEmptySubsequences: true) } == ["bob", "0", #"{"n":2,"tags":["x"]}"#])
    }

    @Test("get of a missing key exits 1, in table and in JSON form")
    func getMissing() async throws {
        let f = try Fixture()
        defer { f.dir.cleanup() }
        let r = try await f.state("get", "views-per-user", "zoe")
        #expect(r.status == 1, "\(r)")
        #expect(r.stderr.contains("key 'zoe' not found in store views-per-user"), "\(r.stderr)")
        let j = try await f.state("get", "views-per-user", "zoe", "--format", "json")
        #expect(j.status == 1, "\(j)")
        let doc = try j.json()
        #expect(doc["found"] as? Bool == false)
        #expect(doc["key"] as? String == "zoe")
    }

    @Test("get --format json gives the value, partition and TTL")
    func getJSON() async throws {
        let f = try Fixture()
        defer { f.dir.cleanup() }
        let doc = try await f.state("get", "views-per-user", "carol", "--format", "json").json()
        #expect(doc["found"] as? Bool == true)
        #expect(doc["value"] as? Int == 7)
        #expect(doc["partition"] as? Int == 1)
        #expect(doc["expiresAt"] as? Int == 1_733_000_000_000)
        #expect(doc["source"] as? String == "snapshot")
    }

    @Test("scan filters by prefix and inclusive range, in key order, and honours --limit")
    func scan() async throws {
        let f = try Fixture()
        defer { f.dir.cleanup() }
        func keys(_ doc: [String: Any]) -> [String] { (doc["entries"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String } }
        let prefix = try await f.state("scan", "views-per-user", "--prefix", "a", "--format", "json").json()
        #expect(keys(prefix) == ["alice", "anna"])
        let range = try await f.state("scan", "views-per-user", "--from", "anna", "--to", "carol", "--format", "json").json()
        #expect(keys(range) == ["anna", "bob", "carol"])
        let limited = try await f.state("scan", "views-per-user", "--limit", "2", "--format", "json").json()
        #expect(keys(limited) == ["alice", "anna"])
        #expect(limited["truncated"] as? Bool == true)
    }

    @Test("count and dump cover every partition; dump --partition only one")
    func countAndDump() async throws {
        let f = try Fixture()
        defer { f.dir.cleanup() }
        let count = try await f.state("count", "views-per-user", "--format", "json").json()
        #expect(count["count"] as? Int == 5)
        let table = try await f.state("count", "views-per-user")
        #expect(table.stdout.split(separator: "\n").last?.split(separator: " ") == ["total", "5"], "\(table.stdout)")
        let dump = try await f.state("dump", "views-per-user", "--partition", "1", "--format", "json").json()
        let entries = dump["entries"] as? [[String: Any]] ?? []
        #expect(entries.compactMap { $0["key"] as? String } == ["carol", "dave"])
        #expect(entries.allSatisfy { $0["partition"] as? Int == 1 })
    }

    @Test("an unknown store exits 2 with a did-you-mean")
    func unknownStore() async throws {
        let f = try Fixture()
        defer { f.dir.cleanup() }
        let r = try await f.state("count", "view-per-user")
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("unknown store 'view-per-user' (did you mean 'views-per-user'?)"), "\(r.stderr)")
    }

    @Test("a corrupt snapshot is reported with its path and --from-changelog is suggested (exit 2)")
    func corruptSnapshot() async throws {
        let f = try Fixture()
        defer { f.dir.cleanup() }
        let path = f.snapshotPath(1)
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        for i in 12..<20 { bytes[i] ^= 0xFF }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let r = try await f.state("get", "views-per-user", "alice")
        #expect(r.status == 2, "\(r)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains(path), "\(r.stderr)")
        #expect(r.stderr.contains("--from-changelog"), "\(r.stderr)")
        let list = try await f.state("list")
        #expect(list.status == 2, "\(list)")
        #expect(list.stdout.contains("CORRUPT"), "\(list.stdout)")
        #expect(list.stderr.contains(path), "\(list.stderr)")
    }

    @Test("a state directory without snapshots exits 2 and says where it looked")
    func noSnapshots() async throws {
        let f = try Fixture()
        defer { f.dir.cleanup() }
        let r = try await cli(["state", "count", "views-per-user", "--config", f.config, "--state-dir", f.dir.file("elsewhere")])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("no snapshots of store views-per-user in \(f.dir.file("elsewhere"))/shop/views-per-user"), "\(r.stderr)")
    }

    @Test("--from-changelog without any Kafka configured exits 2 and explains how to point it at a cluster")
    func fromChangelogWithoutKafka() async throws {
        let f = try Fixture()
        defer { f.dir.cleanup() }
        let r = try await f.state("count", "views-per-user", "--from-changelog")
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("--bootstrap-servers"), "\(r.stderr)")
        #expect(r.stderr.contains("dev-broker"), "\(r.stderr)")
    }

    @Test("list shows keys, bytes and the snapshot's changelog offset per partition; no Kafka means no end offset")
    func listOffline() async throws {
        let f = try Fixture()
        defer { f.dir.cleanup() }
        let doc = try await f.state("list", "--format", "json").json()
        let stores = doc["stores"] as? [[String: Any]] ?? []
        #expect(stores.count == 1)
        #expect(stores.first?["changelogTopic"] as? String == "shop-views-per-user-changelog")
        let partitions = stores.first?["partitions"] as? [[String: Any]] ?? []
        #expect(partitions.count == 2)
        let snapshots = partitions.compactMap { $0["snapshot"] as? [String: Any] }
        #expect(snapshots.compactMap { $0["keys"] as? Int } == [3, 2])
        #expect(snapshots.compactMap { $0["changelogOffset"] as? Int } == [3, 2])
        #expect(snapshots.allSatisfy { ($0["rawBytes"] as? Int ?? 0) > 0 && ($0["compressedBytes"] as? Int ?? 0) > 0 })
        #expect(partitions.allSatisfy { $0["changelogEndOffset"] is NSNull && $0["lag"] is NSNull })
        let table = try await f.state("list")
        #expect(table.status == 0, "\(table)")
        #expect(table.stdout.contains("PARTITION  KEYS  RAW BYTES  COMPRESSED  RATIO  SNAPSHOT OFFSET  END OFFSET  LAG"), "\(table.stdout)")
    }
}
