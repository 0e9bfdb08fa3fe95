import Foundation
import KafkaClient
import StreamEngine
import StreamEngineTesting
import Testing

/// Windows and dead letters, on the in-memory TopologyTestDriver: the engine's own tasks,
/// no Kafka, no Redis.
@Suite("Pipeline logic on the TopologyTestDriver: windows and dead letters")
struct PipelineLogicTests {
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
        let driver = try TopologyTestDriver(yaml: Self.windowYAML)
        for (user, time) in [
            ("a", "12:00:00"), ("a", "12:29:00"), ("b", "12:10:00"),
            ("a", "12:59:59"),   // same hour, 30m59s after 12:29 → a new session
            ("a", "13:03:00"),   // next hour; 12:00 window still open (grace 5m)
            ("a", "12:58:00"),   // out of order but within grace → counted in 12:00
            ("b", "13:06:00"),   // stream time 13:06: closes 12:00–13:00
            ("a", "12:30:00"),   // late: 12:00 window closed, and too old for a session
            ("b", "16:00:00"),   // advances stream time: closes 13:00–14:00 and the earlier sessions
        ] {
            try await driver.pipeInput(topic: "clicks", key: user, value: #"{"user":"\#(user)","ts":"2024-12-14T\#(time)Z"}"#)
        }
        #expect(await driver.counts().deadLettered == 2, "the late record, in both pipelines")

        let hourly = driver.records("hourly-out").map { "\($0.key ?? "") \($0.value?["windowStart"]?.stringValue ?? "?") \($0.value?["count"]?.intValue ?? -1)" }
        #expect(hourly == [
            "a 2024-12-14T12:00:00Z 4", "b 2024-12-14T12:00:00Z 1",
            "a 2024-12-14T13:00:00Z 1", "b 2024-12-14T13:00:00Z 1",
        ])
        let sessions = driver.records("sessions-out").map {
            "\($0.key ?? "") \($0.value?["sessionStart"]?.stringValue ?? "?")–\($0.value?["sessionEnd"]?.stringValue ?? "?") \($0.value?["count"]?.intValue ?? -1)"
        }
        #expect(Set(sessions) == [
            "a 2024-12-14T12:00:00Z–2024-12-14T12:29:00Z 2",
            "b 2024-12-14T12:10:00Z–2024-12-14T12:10:00Z 1",
            "a 2024-12-14T12:58:00Z–2024-12-14T13:03:00Z 3",
            "b 2024-12-14T13:06:00Z–2024-12-14T13:06:00Z 1",
        ])
        let dlq = driver.deadLetters
        #expect(dlq.count == 2)
        #expect(dlq.allSatisfy { $0.header("error.kind") == "late" && $0.header("source.offset") == "7" })
    }

    @Test("A window closes when stream time moves past its end and grace, without another record")
    func streamTimeClosesWindows() async throws {
        let driver = try TopologyTestDriver(yaml: Self.windowYAML)
        try await driver.pipeInput(topic: "clicks", key: "a", value: #"{"user":"a","ts":"2024-12-14T12:00:00Z"}"#)
        #expect(driver.records("hourly-out").isEmpty)
        try await driver.advanceStreamTime(to: try #require(EventTime.parseISO8601("2024-12-14T13:05:00Z")))
        #expect(driver.records("hourly-out").map { $0.value?["count"]?.intValue } == [1])
    }

    static let pricesYAML = """
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

    @Test("Malformed JSON, a missing field and a wrong type each land in the DLQ with the right reason, and the run goes on")
    func deadLetters() async throws {
        let driver = try TopologyTestDriver(yaml: Self.pricesYAML)
        for (key, value) in [
            ("p1", #"{"productId":"p1","price":10,"ts":"2024-12-14T12:00:00Z"}"#),
            ("p1", #"{"productId":"p1","price":12,"ts":"2024-12-14T12:00:0"#),
            ("p2", #"{"productId":"p2","ts":"2024-12-14T12:00:00Z"}"#),
            ("p3", #"{"productId":"p3","price":"cheap","ts":"2024-12-14T12:00:00Z"}"#),
            ("p2", #"{"productId":"p2","price":7,"ts":"2024-12-14T12:00:00Z"}"#),
        ] {
            try await driver.pipeInput(topic: "prices", key: key, value: value)
        }
        try await driver.commit()
        let counts = await driver.counts()
        #expect(counts.processed == 5)
        #expect(counts.deadLettered == 3)
        #expect(driver.redis.get("sum:p1") == "10")
        #expect(driver.redis.get("sum:p2") == "7")
        let dlq = driver.deadLetters.sorted { ($0.header("source.offset") ?? "") < ($1.header("source.offset") ?? "") }
        #expect(dlq.map { $0.header("error.kind") } == ["parse_error", "missing_field", "wrong_type"])
        #expect(dlq.map { $0.header("source.offset") } == ["1", "2", "3"])
        #expect(dlq.allSatisfy { $0.header("pipeline") == "prices" && $0.header("source.topic") == "prices" })
        #expect(dlq[2].header("error")?.contains("price") == true)
        #expect(String(decoding: dlq[0].bytes ?? [], as: UTF8.self).hasPrefix(#"{"productId":"p1","price":12"#), "the original bytes are kept")
        // The store and its changelog agree with Redis.
        #expect(await driver.storeValues("price-sum").count == 2)
        #expect(Set(driver.changelog(store: "price-sum").compactMap(\.key)) == ["p1", "p2"])

        // With on_error: fail the same input stops the run with the reason.
        let failing = try TopologyTestDriver(yaml: Self.pricesYAML.replacingOccurrences(of: "  - name: prices\n", with: "  - name: prices\n    on_error: fail\n"))
        await #expect(throws: RecordFailure.self) {
            try await failing.pipeInput(topic: "prices", key: "p1", value: #"{"productId":"p1","price":12"#)
        }
    }

    /// A per-key sum whose result fails the `select` after it (no `factor` field) at the commit.
    static func failingResultYAML(appId: String) -> String {
        """
        application.id: \(appId)
        topologies:
          - name: prices
            source: { topics: [prices], key: productId, timestamp: ts }
            steps:
              - aggregate: { store: price-sum, aggregator: sum, params: { field: price } }
              - select: { scaled: { mul: [sum, factor] } }
              - redis: { key: "scaled:{key}", mode: value, value: scaled }
        """
    }

    @Test("A key whose aggregate result fails a later step at the commit goes to the DLQ once, as the result with its last record's position")
    func deferredResultDeadLetter() async throws {
        let yaml = Self.failingResultYAML(appId: "result-dlq-app")
        let driver = try TopologyTestDriver(yaml: yaml)
        for (key, price) in [("p1", 10), ("p2", 3), ("p1", 5)] {
            try await driver.pipeInput(topic: "prices", key: key, value: #"{"productId":"\#(key)","price":\#(price),"ts":"2024-12-14T12:00:00Z"}"#, partition: 0)
        }
        try await driver.commit()
        // The records themselves were applied: the state holds both sums.
        #expect(await driver.storeValues("price-sum").count == 2)
        let dlq = driver.deadLetters.sorted { ($0.header("source.offset") ?? "") < ($1.header("source.offset") ?? "") }
        #expect(dlq.map { $0.header("error.kind") } == ["missing_field", "missing_field"])
        #expect(dlq.map { $0.header("source.offset") } == ["1", "2"], "p2's only record, then p1's last")
        #expect(dlq.map(\.key) == ["p2", "p1"])
        let values = dlq.map { (try? JSONValue.parse(String(decoding: $0.bytes ?? [], as: UTF8.self)))?["sum"]?.doubleValue }
        #expect(values == [3, 15], "the failing result, not an input record")
        #expect(driver.redis.get("scaled:p1") == nil)
    }

    @Test("More keys change between two commits than the store keeps decoded: each key's failing result goes to the DLQ once, with its last record's position")
    func deferredResultsPastTheDecodedCache() async throws {
        let yaml = Self.failingResultYAML(appId: "many-keys-app")
        let driver = try TopologyTestDriver(yaml: yaml)
        // Every key twice, the second round after the first filled the store's decoded cache
        // (and it was emptied): the keys' marks of the first round are gone by the second.
        let n = KeyValueStore.decodedCacheLimit + 50
        for round in 0..<2 {
            for k in 0..<n {
                try await driver.pipeInput(topic: "prices", key: "p\(k)", value: #"{"productId":"p\#(k)","price":\#(round + 1),"ts":"2024-12-14T12:00:00Z"}"#, partition: 0)
            }
        }
        try await driver.commit()
        let dlq = driver.deadLetters
        #expect(dlq.count == n, "one dead letter per key, not one per change")
        #expect(Set(dlq.compactMap(\.key)).count == n)
        let lastOffsets = dlq.map { $0.header("source.offset").flatMap { Int($0) } ?? -1 }
        #expect(zip(dlq, lastOffsets).allSatisfy { m, o in o == n + (Int(m.key?.dropFirst() ?? "") ?? -1) }, "each key's last record (second round)")
        let sums = dlq.map { (try? JSONValue.parse(String(decoding: $0.bytes ?? [], as: UTF8.self)))?["sum"]?.doubleValue }
        #expect(sums.allSatisfy { $0 == 3 }, "1 + 2: the result after both records")
    }

    @Test("Hopping windows: each record counts in every window that covers it")
    func hoppingWindows() async throws {
        let driver = try TopologyTestDriver(yaml: """
            application.id: hop-app
            topologies:
              - name: hop
                source: { topics: [clicks], key: user, timestamp: ts }
                steps:
                  - window: { type: hopping, size: 30m, advance: 15m, store: hop-store, aggregator: count }
                  - to: { topic: hop-out }
            """)
        for t in ["12:05", "12:20", "12:40", "14:00"] {
            try await driver.pipeInput(topic: "clicks", key: "a", value: #"{"user":"a","ts":"2024-12-14T\#(t):00Z"}"#)
        }
        let out = driver.records("hop-out").map { "\($0.value?["windowStart"]?.stringValue?.dropFirst(11).prefix(5) ?? "?") \($0.value?["count"]?.intValue ?? -1)" }
        // 12:05 → [11:45,12:15) [12:00,12:30); 12:20 → [12:00,12:30) [12:15,12:45); 12:40 → [12:15,12:45) [12:30,13:00)
        #expect(out == ["11:45 1", "12:00 2", "12:15 2", "12:30 1"])
    }

    /// Sales keyed by user, counted per category after a rekey (also run end to end in `StepsTests`).
    static let rekeyYAML = """
        application.id: rekey-app
        topologies:
          - name: by-category
            source: { topics: [sales], key: user, timestamp: ts }
            steps:
              - rekey: { field: category }
              - aggregate: { store: sales-per-category, aggregator: count }
              - redis: { key: "sales:{key}", mode: value, value: count }
        """

    @Test("A rekey step feeds the repartitioned records to the downstream aggregate, each category on one partition")
    func rekeyInMemory() async throws {
        let driver = try TopologyTestDriver(yaml: Self.rekeyYAML, partitions: 4)
        let categories = ["shoes", "books", "toys", "food", "garden"]
        var expected: [String: Int] = [:]
        for i in 0..<200 {
            let cat = categories[(i * 13) % categories.count]
            expected[cat, default: 0] += 1
            try await driver.pipeInput(
                topic: "sales", key: "user-\(i % 97)", value: #"{"user":"user-\#(i % 97)","category":"\#(cat)","ts":"2024-12-14T12:00:00Z"}"#,
                partition: Int32(i % 4))
        }
        try await driver.advanceWallClockTime(by: .seconds(1))
        // Data records; the rest are the upstream tasks' progress markers (no value, header se-idle).
        let all = driver.records("rekey-app-by-category-repartition")
        let repartitioned = all.filter { $0.header("se-idle") == nil }
        #expect(repartitioned.count == 200)
        #expect(all.filter { $0.header("se-idle") != nil }.allSatisfy { $0.bytes == nil && $0.header("se-ut") != nil && $0.header("se-st") != nil })
        #expect(Dictionary(grouping: repartitioned, by: { $0.key ?? "" }).values.allSatisfy { Set($0.map(\.partition)).count == 1 })
        for (cat, n) in expected { #expect(driver.redis.get("sales:\(cat)") == String(n), "category \(cat)") }
    }

    @Test("After a rekey, a count's repartition records carry `{}` instead of the input value and a sum's the value itself; both see every record")
    func countAndSumAfterRekey() async throws {
        let yaml = """
            application.id: rekey-two
            topologies:
              - name: counted
                source: { topics: [sales], key: user, timestamp: ts }
                steps:
                  - rekey: { field: category }
                  - aggregate: { store: count-per-category, aggregator: count }
                  - redis: { key: "n:{key}", mode: value, value: count }
              - name: summed
                source: { topics: [sales], key: user, timestamp: ts }
                steps:
                  - rekey: { field: category }
                  - aggregate: { store: qty-per-category, aggregator: sum, params: { field: qty } }
                  - redis: { key: "q:{key}", mode: value, value: sum }
            """
        let driver = try TopologyTestDriver(yaml: yaml, partitions: 4)
        var counts: [String: Int] = [:], sums: [String: Int] = [:]
        var inputs: Set<[UInt8]> = []
        for i in 0..<300 {
            let cat = "c\(i % 4)", qty = i % 5 + 1
            counts[cat, default: 0] += 1
            sums[cat, default: 0] += qty
            let value = #"{"user":"user-\#(i % 31)","category":"\#(cat)","qty":\#(qty),"ts":"2024-12-14T12:00:00Z"}"#
            inputs.insert(Array(value.utf8))
            try await driver.pipeInput(topic: "sales", key: "user-\(i % 31)", value: value, partition: Int32(i % 4))
        }
        try await driver.advanceWallClockTime(by: .seconds(1))
        // Each repartition record's value: the engine's stamp, then the payload the reader gets.
        func payloadsEnd(_ topic: String, _ matches: ([UInt8]) -> Bool) -> (records: Int, matching: Int) {
            let data = driver.records(topic).filter { $0.header("se-idle") == nil }.compactMap(\.bytes)
            return (data.count, data.filter(matches).count)
        }
        let counted = payloadsEnd("rekey-two-counted-repartition") { $0.suffix(2).elementsEqual("{}".utf8) }
        #expect(counted.records == 300 && counted.matching == 300, "a count reads no value: `{}` goes out (\(counted))")
        let summed = payloadsEnd("rekey-two-summed-repartition") { bytes in inputs.contains { bytes.count > $0.count && bytes.suffix($0.count).elementsEqual($0) } }
        #expect(summed.records == 300 && summed.matching == 300, "a sum reads the value: the input's bytes go out (\(summed))")
        for (cat, n) in counts { #expect(driver.redis.get("n:\(cat)") == String(n), "count of \(cat)") }
        for (cat, q) in sums { #expect(driver.redis.get("q:\(cat)") == String(q), "sum of \(cat)") }
    }
}
