import Foundation
import KafkaClient
import Testing
@testable import StreamEngine

@Suite("Engine: count per key over embedded Kafka into Redis", .serialized)
struct CountPipelineTests {
    static let yaml = """
        application.id: count-app
        defaults:
          commit.interval.ms: 50
        topologies:
          - name: clicks
            source:
              topics: [clicks]
              key: user
              timestamp: ts
              required: { user: string, ts: string }
            steps:
              - aggregate: { store: clicks-per-user, aggregator: count }
              - redis: { key: "clicks:{key}", mode: hash, fields: { count: count } }
        """

    @Test("Counts per key in Redis equal the counts computed here")
    func countsPerKey() async throws {
        let h = try EngineHarness()
        try h.createTopic("clicks", partitions: 4)
        var expected: [String: Int] = [:]
        var records: [(key: String?, value: String)] = []
        for i in 0..<3000 {
            let user = "u\((i * 7919) % 53)"
            expected[user, default: 0] += 1
            records.append((user, #"{"user":"\#(user)","ts":"2024-12-14T12:00:\#(String(format: "%02d", i % 60))Z","n":\#(i)}"#))
        }
        try await h.produce("clicks", records)
        let config = try h.config(Self.yaml)
        let rt = try await h.runToEnd(config)
        #expect(rt.stats.processed == 3000)
        for (user, n) in expected {
            let hash = try await h.hgetall("clicks:\(user)")
            #expect(hash["count"] == String(n), "user \(user)")
        }
    }
}
