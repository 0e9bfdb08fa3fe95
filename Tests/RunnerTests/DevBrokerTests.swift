import Foundation
import Testing

/// `stream-engine dev-broker` as a standalone process that other processes use.
@Suite("stream-engine dev-broker")
struct DevBrokerTests {
    @Test("kcat sees the brokers and topics of a dev-broker; SIGTERM stops it with exit 0")
    func kcatSeesTopics() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let bootstrapFile = dir.file("bootstrap")
        let broker = try CLIProcess([
            "dev-broker", "--brokers", "3", "--topic", "orders:4", "--topic", "page-views:2", "--bootstrap-file", bootstrapFile,
        ])
        defer { broker.terminate() }

        let deadline = ContinuousClock.now + .seconds(30)
        while !FileManager.default.fileExists(atPath: bootstrapFile) {
            try #require(broker.isRunning, "dev-broker exited before writing its bootstrap file")
            try #require(ContinuousClock.now < deadline, "dev-broker wrote no bootstrap file within 30 s")
            try await Task.sleep(for: .milliseconds(50))
        }
        let bootstrap = try String(contentsOfFile: bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(bootstrap.split(separator: ",").count == 3)

        let metadata = try await runTool("/usr/bin/kcat", ["-b", bootstrap, "-L", "-J", "-m", "10"])
        #expect(metadata.status == 0, "\(metadata)")
        let json = try metadata.json()
        let brokers = json["brokers"] as? [[String: Any]] ?? []
        #expect(brokers.count == 3)
        let topics = Dictionary(uniqueKeysWithValues: (json["topics"] as? [[String: Any]] ?? []).map {
            ($0["topic"] as? String ?? "", ($0["partitions"] as? [Any] ?? []).count)
        })
        #expect(topics["orders"] == 4)
        #expect(topics["page-views"] == 2)

        broker.signal(SIGTERM)
        let result = try await broker.wait(timeout: .seconds(30))
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.split(separator: "\n").first.map(String.init) == bootstrap, "the bootstrap list is printed on stdout")
    }

    @Test("a malformed --topic is a usage error (exit 2)")
    func badTopic() async throws {
        let r = try await cli(["dev-broker", "--topic", "orders"])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("NAME:PARTITIONS"), "\(r.stderr)")
    }
}
