import Foundation
import KafkaClient
import Testing
@testable import StreamEngine

@Suite("Engine: rekey, windows and dead letters", .serialized)
struct StepsTests {
    @Test("A rekey step sends every record through the repartition topic and the downstream aggregate sees all of them")
    func rekeyThroughRepartition() async throws {
        let h = try EngineHarness()
        try h.createTopic("sales", partitions: 4)
        var expected: [String: Int] = [:]
        var records: [(key: String?, value: String)] = []
        let categories = ["shoes", "books", "toys", "food", "garden"]
        for i in 0..<2000 {
            let cat = categories[(i * 13) % categories.count]
            expected[cat, default: 0] += 1
            // Keyed by user: the same category is spread over every partition.
            records.append(("user-\(i % 97)", #"{"user":"user-\#(i % 97)","category":"\#(cat)","ts":"2024-12-14T12:00:00Z"}"#))
        }
        try await h.produce("sales", records)
        let config = try h.config("""
            application.id: rekey-app
            topologies:
              - name: by-category
                source: { topics: [sales], key: user, timestamp: ts }
                steps:
                  - rekey: { field: category }
                  - aggregate: { store: sales-per-category, aggregator: count }
                  - redis: { key: "sales:{key}", mode: value, value: count }
            """)
        try await h.runToEnd(config)
        let repartitioned = try await h.readAll("rekey-app-by-category-repartition")
        #expect(repartitioned.count == 2000)
        // Each category lands in exactly one repartition partition.
        let partitionsPerCategory = Dictionary(grouping: repartitioned, by: { String(decoding: $0.key ?? [], as: UTF8.self) }).mapValues { Set($0.map(\.partition)).count }
        #expect(partitionsPerCategory.values.allSatisfy { $0 == 1 })
        for (cat, n) in expected {
            #expect(try await h.get("sales:\(cat)") == String(n), "category \(cat)")
        }
    }

    static let windowYAML = """
        application.id: window-app
        topologies:
          - name: hourly
            source: { topics: [clicks], key: user, timestamp: ts }
            steps:
              - window: { type: tumbling, size: 1h, grace: 5m, store: clicks-hourly, aggregator: count }
              - to: { topic: hourly-out }
          - name: sessions
            source: { topics: [clicks], key: user, timestamp: ts }
            steps:
              - window: { type: session, gap: 30m, store: click-sessions, aggregator: count }
              - to: { topic: sessions-out }
        """

    @Test("Tumbling and session windows emit the expected closed windows; a late record goes to the DLQ with reason 'late'")
    func windows() async throws {
        let h = try EngineHarness()
        try h.createTopic("clicks", partitions: 1)
        func click(_ user: String, _ time: String) -> (key: String?, value: String) {
            (user, #"{"user":"\#(user)","ts":"2024-12-14T\#(time)Z"}"#)
        }
        try await h.produce("clicks", [
            click("a", "12:00:00"), click("a", "12:29:00"), click("b", "12:10:00"),
            click("a", "12:59:59"),   // same hour, 30m59s after 12:29 → a new session
            click("a", "13:03:00"),   // next hour; 12:00 window still open (grace 5m)
            click("a", "12:58:00"),   // out of order but within grace → counted in 12:00
            click("b", "13:06:00"),   // stream time 13:06: closes 12:00–13:00
            click("a", "12:30:00"),   // late: 12:00 window closed, and too old for a session
            click("b", "16:00:00"),   // advances stream time: closes 13:00–14:00 and the earlier sessions
        ])
        let config = try h.config(Self.windowYAML)
        let rt = try await h.runToEnd(config)
        #expect(rt.stats.deadLettered == 2, "the late record, in both pipelines")

        let hourly = try await h.readJSON("hourly-out").map { "\($0.key) \($0.value["windowStart"]?.stringValue ?? "?") \($0.value["count"]?.intValue ?? -1)" }
        #expect(hourly == [
            "a 2024-12-14T12:00:00Z 4", "b 2024-12-14T12:00:00Z 1",
            "a 2024-12-14T13:00:00Z 1", "b 2024-12-14T13:00:00Z 1",
        ])
        let sessions = try await h.readJSON("sessions-out").map {
            "\($0.key) \($0.value["sessionStart"]?.stringValue ?? "?")–\($0.value["sessionEnd"]?.stringValue ?? "?") \($0.value["count"]?.intValue ?? -1)"
        }
        #expect(Set(sessions) == [
            "a 2024-12-14T12:00:00Z–2024-12-14T12:29:00Z 2",
            "b 2024-12-14T12:10:00Z–2024-12-14T12:10:00Z 1",
            "a 2024-12-14T12:58:00Z–2024-12-14T13:03:00Z 3",
            "b 2024-12-14T13:06:00Z–2024-12-14T13:06:00Z 1",
        ])
        let dlq = try await h.readAll("window-app-dlq")
        #expect(dlq.count == 2)
        #expect(dlq.allSatisfy { $0.header("error.kind")?.stringValue == "late" && $0.header("source.offset")?.stringValue == "7" })
    }

    @Test("Malformed JSON, a missing field and a wrong type each land in the DLQ with the right reason, and the run goes on")
    func deadLetters() async throws {
        let h = try EngineHarness()
        try h.createTopic("prices", partitions: 1)
        try await h.produce("prices", [
            ("p1", #"{"productId":"p1","price":10,"ts":"2024-12-14T12:00:00Z"}"#),
            ("p1", #"{"productId":"p1","price":12,"ts":"2024-12-14T12:00:0"#),
            ("p2", #"{"productId":"p2","ts":"2024-12-14T12:00:00Z"}"#),
            ("p3", #"{"productId":"p3","price":"cheap","ts":"2024-12-14T12:00:00Z"}"#),
            ("p2", #"{"productId":"p2","price":7,"ts":"2024-12-14T12:00:00Z"}"#),
        ])
        let yaml = """
            application.id: dlq-app
            topologies:
              - name: prices
                source:
                  topics: [prices]
                  key: productId
                  timestamp: ts
                  required: { productId: string, price: number }
                steps:
                  - aggregate: { store: price-sum, aggregator: sum, params: { field: price } }
                  - redis: { key: "sum:{key}", mode: value, value: sum }
            """
        let rt = try await h.runToEnd(try h.config(yaml))
        #expect(rt.stats.processed == 5)
        #expect(rt.stats.deadLettered == 3)
        #expect(try await h.get("sum:p1") == "10")
        #expect(try await h.get("sum:p2") == "7")
        // The DLQ is keyed like the input, so its records spread over partitions: order them by source offset.
        let dlq = try await h.readAll("dlq-app-dlq").sorted { ($0.header("source.offset")?.stringValue ?? "") < ($1.header("source.offset")?.stringValue ?? "") }
        #expect(dlq.map { $0.header("error.kind")?.stringValue } == ["parse_error", "missing_field", "wrong_type"])
        #expect(dlq.map { $0.header("source.offset")?.stringValue } == ["1", "2", "3"])
        #expect(dlq.allSatisfy { $0.header("pipeline")?.stringValue == "prices" && $0.header("source.topic")?.stringValue == "prices" })
        #expect(dlq[2].header("error")?.stringValue?.contains("price") == true)
        #expect(String(decoding: dlq[0].value ?? [], as: UTF8.self).hasPrefix(#"{"productId":"p1","price":12"#), "the original bytes are kept")

        // With on_error: fail the same input stops the run with the reason.
        let h2 = try EngineHarness()
        try h2.createTopic("prices", partitions: 1)
        try await h2.produce("prices", [("p1", #"{"productId":"p1","price":12"#)])
        await #expect(throws: RecordFailure.self) {
            try await h2.runToEnd(try h2.config(yaml.replacingOccurrences(of: "  - name: prices\n", with: "  - name: prices\n    on_error: fail\n")))
        }
    }

    @Test("An engine-owned topic with the wrong partition count is a clear error naming it and both counts")
    func partitionMismatch() async throws {
        let h = try EngineHarness()
        try h.createTopic("clicks", partitions: 4)
        try h.createTopic("mm-app-clicks-per-user-changelog", partitions: 2)
        let config = try h.config("""
            application.id: mm-app
            topologies:
              - name: clicks
                source: { topics: [clicks], key: user }
                steps:
                  - aggregate: { store: clicks-per-user, aggregator: count }
            """)
        do {
            try await h.runToEnd(config, timeout: .seconds(30))
            Issue.record("the run should have failed")
        } catch let error as StreamEngineError {
            #expect(error.message.contains("mm-app-clicks-per-user-changelog"))
            #expect(error.message.contains("exists with 2 partitions, expected 4"), "\(error.message)")
            #expect(error.message.contains("delete the topic"), "the way out: \(error.message)")
        }
    }

    @Test("Hopping windows: each record counts in every window that covers it")
    func hoppingWindows() async throws {
        let h = try EngineHarness()
        try h.createTopic("clicks", partitions: 1)
        try await h.produce("clicks", ["12:05", "12:20", "12:40", "14:00"].map { t in ("a", #"{"user":"a","ts":"2024-12-14T\#(t):00Z"}"#) })
        let config = try h.config("""
            application.id: hop-app
            topologies:
              - name: hop
                source: { topics: [clicks], key: user, timestamp: ts }
                steps:
                  - window: { type: hopping, size: 30m, advance: 15m, store: hop-store, aggregator: count }
                  - to: { topic: hop-out }
            """)
        try await h.runToEnd(config)
        let out = try await h.readJSON("hop-out").map { "\($0.value["windowStart"]?.stringValue?.dropFirst(11).prefix(5) ?? "?") \($0.value["count"]?.intValue ?? -1)" }
        // 12:05 → [11:45,12:15) [12:00,12:30); 12:20 → [12:00,12:30) [12:15,12:45); 12:40 → [12:15,12:45) [12:30,13:00)
        #expect(out == ["11:45 1", "12:00 2", "12:15 2", "12:30 1"])
    }
}
