import Foundation
import KafkaClient
import Testing
@testable import StreamEngine
import StreamEngineTesting

@Suite("Engine on embedded Kafka and Redis: rekey through a real repartition topic, engine-owned topic checks", .serialized)
struct StepsTests {
    @Test("exactly_once (no combiner): a rekey step sends every record through the repartition topic and the downstream aggregate sees all of them")
    func rekeyThroughRepartition() async throws {
        let h = try EngineTestHarness()
        try h.createTopic("sales", partitions: 4)
        let (records, expected) = Self.sales()
        try await h.produce("sales", records)
        let config = try h.config(PipelineLogicTests.rekeyYAML.replacingOccurrences(
            of: "topologies:", with: "defaults: { processing.guarantee: exactly_once }\ntopologies:"))
        try await h.runToEnd(config)
        // Data records; the others are the upstream tasks' progress markers (no value, header se-idle).
        let repartitioned = try await h.readAll("rekey-app-by-category-repartition").filter { $0.header("se-idle") == nil }
        #expect(repartitioned.count == 2000)
        // Each carries a binary stamp at the start of its value (no header): its event time (the
        // ts field) and its upstream position; the rest is `{}`: the count after the rekey reads
        // no value, so the input record's JSON is left out.
        #expect(repartitioned.allSatisfy { $0.headers.isEmpty })
        let framed = repartitioned.map { RepartitionStamp.unframe($0.value) }
        let eventTime = EventTime.parseISO8601("2024-12-14T12:00:00Z")
        #expect(framed.allSatisfy { $0?.stamp.eventTime == eventTime && $0?.stamp.position?.topic == "sales" && $0?.stamp.partial == false })
        #expect(framed.allSatisfy { $0?.payload == Array("{}".utf8) })
        #expect(Set(zip(repartitioned, framed).compactMap { StreamTask.upstreamPosition($0, stamp: $1?.stamp) }).count == 2000, "every record names its own input position")
        // Each category lands in exactly one repartition partition.
        let partitionsPerCategory = Dictionary(grouping: repartitioned, by: { String(decoding: $0.key ?? [], as: UTF8.self) }).mapValues { Set($0.map(\.partition)).count }
        #expect(partitionsPerCategory.values.allSatisfy { $0 == 1 })
        for (cat, n) in expected {
            #expect(try await h.get("sales:\(cat)") == String(n), "category \(cat)")
        }
    }

    @Test("at_least_once: the upstream tasks combine the count after a rekey into one partial per category and commit; the downstream merges them to the exact counts")
    func rekeyCombined() async throws {
        let h = try EngineTestHarness()
        try h.createTopic("sales", partitions: 4)
        let (records, expected) = Self.sales()
        try await h.produce("sales", records)
        try await h.runToEnd(try h.config(PipelineLogicTests.rekeyYAML))
        let repartitioned = try await h.readAll("rekey-app-by-category-repartition").filter { $0.header("se-idle") == nil }
        let framed = repartitioned.compactMap { RepartitionStamp.unframe($0.value) }
        #expect(framed.count == repartitioned.count)
        // At most one partial per category, upstream task and commit: here far fewer than the records.
        #expect(repartitioned.count >= expected.count && repartitioned.count < 200, "\(repartitioned.count) partials")
        #expect(framed.allSatisfy { $0.stamp.partial && $0.stamp.position?.topic == "sales" })
        var sum: [String: Int] = [:]
        for (m, f) in zip(repartitioned, framed) {
            let value = try JSONValue.parse(f.payload)
            sum[String(decoding: m.key ?? [], as: UTF8.self), default: 0] += Int(value["p"]?.doubleValue ?? -1_000_000)
        }
        #expect(sum == expected, "the partials add up to the counts")
        #expect(Set(zip(repartitioned, framed).compactMap { StreamTask.upstreamPosition($0, stamp: $1.stamp) }).count == repartitioned.count, "every partial names its own position")
        for (cat, n) in expected {
            #expect(try await h.get("sales:\(cat)") == String(n), "category \(cat)")
        }
    }

    /// A combinable aggregator that reads the record's key: `{key: records}` per key.
    struct KeysSeen: Aggregator {
        func initial() -> JSONValue { .object([:]) }
        func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue {
            var o = state.objectValue ?? [:]
            o[record.key] = .number((o[record.key]?.doubleValue ?? 0) + 1)
            return .object(o)
        }
        func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue {
            var o = a.objectValue ?? [:]
            for (k, v) in b.objectValue ?? [:] { o[k] = .number((o[k]?.doubleValue ?? 0) + (v.doubleValue ?? 0)) }
            return .object(o)
        }
        var combinable: Bool { true }
    }

    @Test("at_least_once: an aggregator that reads the key (the default) sees each record under its new key when the upstream tasks combine it before the repartition")
    func combinedAggregatorReadsNewKey() async throws {
        var registry = OperatorRegistry()
        registry.register(aggregator: "keys_seen") { _ in KeysSeen() }
        let h = try EngineTestHarness(registry: registry)
        try h.createTopic("sales", partitions: 4)
        let (records, expected) = Self.sales()
        try await h.produce("sales", records)
        try await h.runToEnd(try h.config(PipelineLogicTests.rekeyYAML
            .replacingOccurrences(of: "aggregator: count", with: "aggregator: keys_seen")
            .replacingOccurrences(of: "value: count", with: "value: json")))
        let partials = try await h.readAll("rekey-app-by-category-repartition").filter { $0.header("se-idle") == nil }
        #expect(partials.allSatisfy { RepartitionStamp.unframe($0.value)?.stamp.partial == true }, "combined before the repartition")
        for (cat, n) in expected {
            let stored = try JSONValue.parse(try #require(try await h.get("sales:\(cat)"), "category \(cat)"))
            #expect(stored == .object([cat: .number(Double(n))]), "category \(cat): every record seen under its new key")
        }
    }

    /// 2,000 sales of 5 categories keyed by 97 users (each category spread over every
    /// partition), and the expected count per category.
    static func sales() -> (records: [(key: String?, value: String)], counts: [String: Int]) {
        var expected: [String: Int] = [:]
        var records: [(key: String?, value: String)] = []
        let categories = ["shoes", "books", "toys", "food", "garden"]
        for i in 0..<2000 {
            let cat = categories[(i * 13) % categories.count]
            expected[cat, default: 0] += 1
            records.append(("user-\(i % 97)", #"{"user":"user-\#(i % 97)","category":"\#(cat)","ts":"2024-12-14T12:00:00Z"}"#))
        }
        return (records, expected)
    }

    @Test("Repartition records are written lz4-compressed unless defaults.repartition.compression.type says otherwise")
    func repartitionCodec() async throws {
        // The bytes the repartition topic holds after the same run, with each setting.
        func repartitionBytes(_ codec: String?) async throws -> (bytes: Int64, raw: Int) {
            let h = try EngineTestHarness()
            try h.createTopic("sales", partitions: 4)
            let records = (0..<2000).map { i in
                (key: Optional("user-\(i % 97)"), value: #"{"user":"user-\#(i % 97)","category":"c\#(i % 5)","note":"\#(String(repeating: "x", count: 200))","ts":"2024-12-14T12:00:00Z"}"#)
            }
            try await h.produce("sales", records)
            // A filter after the rekey reads the value: the records carry it (a count alone would not).
            var yaml = PipelineLogicTests.rekeyYAML.replacingOccurrences(
                of: "      - aggregate: { store: sales-per-category", with: "      - filter: [{ field: note, op: exists }]\n      - aggregate: { store: sales-per-category")
            #expect(yaml.contains("note"))
            if let codec { yaml = yaml.replacingOccurrences(of: "topologies:", with: "defaults: { repartition.compression.type: \(codec) }\ntopologies:") }
            try await h.runToEnd(try h.config(yaml))
            let topic = "rekey-app-by-category-repartition"
            let written = try await h.readAll(topic).filter { $0.header("se-idle") == nil }
            #expect(written.count == 2000)
            let raw = written.reduce(0) { $0 + ($1.value?.count ?? 0) }
            var bytes: Int64 = 0
            for p in Int32(0)..<4 { bytes += try #require(h.kafka.logBytes(topic, partition: p)) }
            return (bytes, raw)
        }
        let lz4 = try await repartitionBytes(nil)
        let none = try await repartitionBytes("none")
        #expect(none.bytes > Int64(none.raw), "uncompressed: the batches hold at least the values (\(none.bytes) bytes for \(none.raw))")
        #expect(lz4.bytes < Int64(lz4.raw) / 2, "lz4 by default: \(lz4.bytes) bytes for \(lz4.raw) bytes of values")
    }

    @Test("Pipelines on one topic: each decodes by its own source; a bad record is dead-lettered once per pipeline that rejects it")
    func pipelinesOnOneTopicDecodeAlikeOrApart() async throws {
        let h = try EngineTestHarness()
        try h.createTopic("buys", partitions: 2)
        var records: [(key: String?, value: String)] = (0..<400).map { i in
            ("u-\(i % 7)", #"{"user":"u-\#(i % 7)","qty":\#(i % 3 + 1),"ts":"2024-12-14T12:00:00Z"}"#)
        }
        records.insert(("u-1", #"{"user":"u-1","qty":"#), at: 100)  // malformed JSON
        records.insert(("u-2", #"{"user":"u-2","ts":"2024-12-14T12:00:00Z"}"#), at: 200)  // no qty
        records.insert(("u-3", #"[1,2]"#), at: 300)  // not an object
        try await h.produce("buys", records)
        // Two pipelines with one source spec (decoded once for both), one with another (no required field).
        let config = try h.config("""
            application.id: shared-app
            topologies:
              - name: qty-a
                source: { topics: [buys], key: user, timestamp: ts, required: { qty: integer } }
                steps:
                  - aggregate: { store: qty-a, aggregator: sum, params: { field: qty } }
                  - redis: { key: "a:{key}", mode: value, value: sum }
              - name: qty-b
                source: { topics: [buys], key: user, timestamp: ts, required: { qty: integer } }
                steps:
                  - aggregate: { store: qty-b, aggregator: count }
                  - redis: { key: "b:{key}", mode: value, value: count }
              - name: any-c
                source: { topics: [buys], key: user }
                steps:
                  - aggregate: { store: any-c, aggregator: count }
                  - redis: { key: "c:{key}", mode: value, value: count }
            """)
        try await h.runToEnd(config)
        for u in 0..<7 {
            let mine = (0..<400).filter { $0 % 7 == u }
            #expect(try await h.get("a:u-\(u)") == String(mine.reduce(0) { $0 + $1 % 3 + 1 }), "sum of u-\(u)")
            #expect(try await h.get("b:u-\(u)") == String(mine.count), "count of u-\(u)")
            // any-c needs no field but its key: it counts u-2's record without qty too.
            #expect(try await h.get("c:u-\(u)") == String(mine.count + (u == 2 ? 1 : 0)), "any-c count of u-\(u)")
        }
        let dead = try await h.readAll("shared-app-dlq")
        let byPipeline = Dictionary(grouping: dead) { $0.header("pipeline")?.stringValue ?? "?" }.mapValues { $0.compactMap { $0.header("error.kind")?.stringValue }.sorted() }
        #expect(byPipeline["qty-a"] == ["missing_field", "parse_error", "parse_error"])
        #expect(byPipeline["qty-b"] == ["missing_field", "parse_error", "parse_error"])
        #expect(byPipeline["any-c"] == ["parse_error", "parse_error"])
        #expect(dead.allSatisfy { $0.header("source.topic")?.stringValue == "buys" })
    }

    @Test("An engine-owned topic with the wrong partition count is a clear error naming it and both counts")
    func partitionMismatch() async throws {
        let h = try EngineTestHarness()
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
}
