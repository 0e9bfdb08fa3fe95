import Foundation
import KafkaClient
import Logging
import RedisClient
import StreamEngine
import StreamEngineTesting
import StreamInspection
import Testing
import ThreadExecutors

/// Runs a count pipeline with `stream-engine run` against a Kafka cluster and
/// Redis, then checks that every `state` command agrees — from the snapshots,
/// from the changelog, and with the values the job wrote to Redis.
@Suite("stream-engine state after a real run", .serialized)
struct StateEndToEndTests {
    static let app = CountPipelineFixture.applicationId
    static let store = CountPipelineFixture.store
    static let yaml = CountPipelineFixture.yaml

    @Test("get/scan/count/dump from snapshots and from the changelog agree with each other and with Redis; diff and list are clean; nothing is written")
    func stateAgreesWithRedis() async throws {
        let h = try EngineTestHarness(brokers: 3, label: "runner-test")
        let (kafka, redisServer, redis) = (h.kafka, h.redisServer, h.redis)
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let config = try dir.write("topologies.yaml", Self.yaml)
        let stateDir = dir.file("state")

        // The mock cluster has no CreateTopics: every topic the run needs exists up front.
        for topic in ["clicks", "\(Self.app)-\(Self.store)-changelog", "\(Self.app)-dlq"] {
            try kafka.createTopic(topic, partitions: 4)
        }
        let (records, expected) = CountPipelineFixture.clicks(count: 2000, users: 41)
        try await h.produce(CountPipelineFixture.topic, records.map { (key: Optional($0.key), value: $0.value) })

        let run = try await cli([
            "run", "--config", config, "--stop-at-end", "--bootstrap-servers", kafka.bootstrapServers,
            "--redis-url", "\(redisServer.url)", "--state-dir", stateDir, "--log-level", "warning",
        ], timeout: .seconds(180))
        try #require(run.status == 0, "\(run)")
        #expect(run.stdout.contains("stream-engine: 2000 records processed, 0 dead-lettered"), "\(run.stdout)")

        var inRedis: [String: Int] = [:]
        for user in expected.keys {
            let reply = try await redis.command(["HGET", "clicks:\(user)", "count"])
            inRedis[user] = reply.string.flatMap { Int($0) }
        }
        #expect(inRedis == expected, "Redis holds the job's counts")

        let snapshotBytesBefore = Self.files(under: stateDir)
        let topicsBefore = try await Self.topics(kafka)

        func state(_ args: [String], fromChangelog: Bool) async throws -> CLIResult {
            try await cli(["state"] + args + ["--config", config, "--state-dir", stateDir, "--bootstrap-servers", kafka.bootstrapServers, "--format", "json"]
                + (fromChangelog ? ["--from-changelog"] : []))
        }
        func values(_ doc: [String: Any]) -> [String: Int] {
            var out: [String: Int] = [:]
            for e in doc["entries"] as? [[String: Any]] ?? [] { out[e["key"] as? String ?? ""] = e["value"] as? Int }
            return out
        }

        var dumps: [[String: Int]] = []
        for fromChangelog in [false, true] {
            let source = fromChangelog ? "changelog" : "snapshot"
            let dump = try await state(["dump", Self.store], fromChangelog: fromChangelog)
            #expect(dump.status == 0, "\(dump)")
            let dumped = values(try dump.json())
            #expect(dumped == inRedis, "dump from the \(source) equals Redis")
            dumps.append(dumped)

            let count = try await state(["count", Self.store], fromChangelog: fromChangelog).json()
            #expect(count["count"] as? Int == inRedis.count, "count from the \(source)")
            #expect(count["source"] as? String == source)

            for user in ["u0", "u7", "u40"] {
                let get = try await state(["get", Self.store, user], fromChangelog: fromChangelog)
                #expect(get.status == 0, "\(get)")
                #expect(try get.json()["value"] as? Int == inRedis[user], "get \(user) from the \(source)")
            }
            let missing = try await state(["get", Self.store, "nobody"], fromChangelog: fromChangelog)
            #expect(missing.status == 1, "a missing key exits 1 (\(source))")
            #expect(try missing.json()["found"] as? Bool == false)

            let scan = try await state(["scan", Self.store, "--prefix", "u1"], fromChangelog: fromChangelog).json()
            let scanned = (scan["entries"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            #expect(scanned == inRedis.keys.filter { $0.hasPrefix("u1") }.sorted(), "scan --prefix from the \(source)")
            #expect(values(scan) == inRedis.filter { $0.key.hasPrefix("u1") })

            var perPartition: [String: Int] = [:]
            for p in 0..<4 {
                let part = try await state(["dump", Self.store, "--partition", String(p)], fromChangelog: fromChangelog).json()
                perPartition.merge(values(part)) { a, _ in a }
            }
            #expect(perPartition == inRedis, "the partitions together hold every key once (\(source))")
        }
        #expect(dumps.count == 2 && dumps[0] == dumps[1], "snapshots and changelog agree")

        let diff = try await cli(["state", "diff", Self.store, "--against-changelog", "--config", config, "--state-dir", stateDir,
                                  "--bootstrap-servers", kafka.bootstrapServers, "--format", "json"])
        #expect(diff.status == 0, "\(diff)")
        #expect(try diff.json()["differenceCount"] as? Int == 0)

        let list = try await state(["list"], fromChangelog: false)
        #expect(list.status == 0, "\(list)")
        let listed = try list.json()
        #expect((listed["kafka"] as? [String: Any])?["reachable"] as? Bool == true)
        let partitions = ((listed["stores"] as? [[String: Any]])?.first?["partitions"] as? [[String: Any]]) ?? []
        #expect(partitions.count == 4)
        #expect(partitions.compactMap { ($0["snapshot"] as? [String: Any])?["keys"] as? Int }.reduce(0, +) == inRedis.count)
        #expect(partitions.allSatisfy { $0["lag"] as? Int == 0 }, "the final snapshots cover the whole changelog")
        #expect(partitions.allSatisfy { ($0["changelogEndOffset"] as? Int ?? 0) > 0 })

        // A store whose changelog topic does not exist: reported, and not created by asking.
        let ghost = try dir.write("ghost.yaml", Self.yaml.replacingOccurrences(of: Self.store, with: "phantom"))
        let ghostRead = try await cli(["state", "count", "phantom", "--from-changelog", "--config", ghost, "--bootstrap-servers", kafka.bootstrapServers])
        #expect(ghostRead.status == 2, "\(ghostRead)")
        #expect(ghostRead.stderr.contains("\(Self.app)-phantom-changelog does not exist"), "\(ghostRead.stderr)")
        _ = try await cli(["state", "list", "--config", ghost, "--state-dir", stateDir, "--bootstrap-servers", kafka.bootstrapServers])

        #expect(Self.files(under: stateDir) == snapshotBytesBefore, "the state directory is left exactly as it was")
        #expect(try await Self.topics(kafka) == topicsBefore, "no topic was created")
        await redis.close()
    }

    /// Every file under a directory with its contents.
    static func files(under dir: String) -> [String: Data] {
        var out: [String: Data] = [:]
        for case let path as String in FileManager.default.enumerator(atPath: dir)?.allObjects ?? [] {
            let full = (dir as NSString).appendingPathComponent(path)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue {
                out[path] = FileManager.default.contents(atPath: full)
            }
        }
        return out
    }

    /// Topic names and partition counts, from an all-topics Metadata request (which creates nothing).
    static func topics(_ kafka: EmbeddedKafkaCluster) async throws -> [String: Int] {
        let config = kafka.clientConfig
        return try await runOnDedicatedThread("metadata") {
            try TopicMetadata.partitionCounts(config: config, logger: Logger(label: "metadata"))
        }
    }
}
