import Foundation
import KafkaClient
import Logging
import Synchronization
import Testing

@testable import StreamEngine

/// What a task reading a repartition topic commits as its position: per upstream input
/// partition, the position of the last record taken in that upstream task's output. Two runs
/// from one commit may take different records first (arrival order); the changelog records
/// of a run that never committed must not pass for committed after another run committed.
@Suite("Merged repartition input: commit tags name records, not counts")
struct MergedInputPositionTests {
    static let yaml = """
        application.id: tags-app
        topologies:
          - name: totals
            source:
              topics: [orders]
              key: user
              required: { user: string, amount: number }
            steps:
              - rekey: { field: user }
              - aggregate: { store: totals-by-user, aggregator: sum, params: { field: amount } }
              - redis: { key: "total:{key}", mode: hash }
        """

    /// Keeps what a task sends.
    final class Collector: RecordCollector {
        let sent = Mutex<[ProducerRecord]>([])
        func trySend(_ record: ProducerRecord) throws(KafkaError) -> Bool {
            sent.withLock { $0.append(record) }
            return true
        }
        func send(_ record: ProducerRecord) async throws { sent.withLock { $0.append(record) } }
        func take() -> [ProducerRecord] { sent.withLock { r in defer { r = [] }; return r } }
    }

    let config: StreamConfig
    let sub: SubTopology
    let repartition: String

    init() throws {
        config = try ConfigLoader.load(yaml: Self.yaml, file: "test.yaml", registry: OperatorRegistry().names, environment: [:])
        sub = TopologyPlan(config: config).subTopologies.first { $0.fromRepartition }!
        repartition = config.repartitionTopic(pipeline: "totals")
    }

    /// A fresh task of the stateful sub-topology (partition 0 of the repartition topic, two upstream tasks).
    func task(_ collector: Collector) throws -> StreamTask {
        var logger = Logger(label: "merged-input-test")
        logger.logLevel = .error
        var env = TaskEnvironment(config: config, registry: OperatorRegistry(), collector: collector, globals: GlobalTables(), logger: logger,
                                  stateDir: FileManager.default.temporaryDirectory.path)
        env.partitionCounts[repartition] = 2
        return try StreamTask(sub: sub, partition: 0, env: env)
    }

    /// A repartition record written by upstream task `upstream` for its input offset `inputOffset`.
    func record(offset: Int64, upstream: Int32, inputOffset: Int64, user: String, amount: Int) -> KafkaMessage {
        KafkaMessage(topic: repartition, partition: 0, offset: offset, key: Array(user.utf8),
                     value: Array(#"{"user":"\#(user)","amount":\#(amount)}"#.utf8), headers: [
                        KafkaHeader(Headers.eventTime, "1000"), KafkaHeader(Headers.upstreamPartition, "orders/\(upstream)"),
                        KafkaHeader(Headers.upstreamSequence, "\(inputOffset).0"), KafkaHeader(Headers.upstreamTask, String(upstream)),
                        KafkaHeader(Headers.upstreamStreamTime, "1000"),
                     ], timestamp: 1000)
    }

    /// The store a restore builds from `changelog` (in order) given the committed positions: the restorer's rule.
    func restored(_ changelog: [ProducerRecord], committed: [String: Int64]) throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for (i, r) in changelog.enumerated() where r.topic == config.changelogTopic(store: "totals-by-user") {
            let m = KafkaMessage(topic: r.topic, partition: 0, offset: Int64(i), key: r.key, value: r.value, headers: r.headers)
            let (key, entry, tag) = try ChangelogCodec.decode(m)
            guard let tag, tag.isCommitted(by: committed) else { continue }
            out[key] = entry?.value
        }
        return out
    }

    @Test("A repartition record's binary stamp says what the five text headers of earlier versions say: event time, upstream task, stream time and position")
    func stampAndTextHeadersAgree() async throws {
        let text = record(offset: 7, upstream: 1, inputOffset: 42, user: "u", amount: 1)
        let stamp = RepartitionStamp(eventTime: 1000, upstreamTask: 1, streamTime: 1000, position: .init(topic: "orders", offset: 42, index: 0))
        #expect(RepartitionStamp(stamp.encoded()) == stamp)
        // The wire format, byte for byte (records written by earlier runs must still read).
        #expect(stamp.encoded() == [1, 0xE8, 0x03, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0xE8, 0x03, 0, 0, 0, 0, 0, 0,
                                    42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] + Array("orders".utf8))
        #expect(RepartitionStamp(eventTime: -1, upstreamTask: 3, streamTime: 2, position: .init(topic: "é", offset: 1 << 38, index: 0xABCDEF)).encoded()
            == [1] + Array(repeating: 0xFF, count: 8) + [3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0xEF, 0xCD, 0xAB, 0, 0xC3, 0xA9])
        let binary = KafkaMessage(topic: repartition, partition: 0, offset: 7, key: text.key, value: text.value,
                                  headers: [KafkaHeader(Headers.repartitionStamp, stamp.encoded())], timestamp: 5)
        #expect(StreamTask.upstreamPosition(binary) == StreamTask.upstreamPosition(text))
        #expect(StreamTask.upstreamPosition(binary) == InputPosition(key: "orders/1", value: 42 << 24))
        #expect(UpstreamMerge.stamp(of: binary)! == UpstreamMerge.stamp(of: text)!)
        let t = try task(Collector())
        let origin = RecordOrigin(topic: repartition, partition: 0, offset: 7)
        let fromBinary = try await t.decode(binary, origin: origin)
        let fromText = try await t.decode(text, origin: origin)
        #expect(fromBinary.timestamp == 1000)
        #expect(fromText.timestamp == 1000)
        // Periodic work's records have no position; a stamp of another version is not read.
        let periodic = RepartitionStamp(eventTime: -3, upstreamTask: 0, streamTime: .min, position: nil)
        #expect(RepartitionStamp(periodic.encoded()) == periodic)
        #expect(StreamTask.upstreamPosition(KafkaMessage(topic: repartition, partition: 0, offset: 8, key: nil, value: nil, headers: [KafkaHeader(Headers.repartitionStamp, periodic.encoded())])) == nil)
        #expect(RepartitionStamp([3] + stamp.encoded().dropFirst()) == nil)
        // Version 2: the same layout on a combiner's partial state.
        var partial = stamp
        partial.partial = true
        #expect(partial.encoded()[0] == 2 && RepartitionStamp(partial.encoded()) == partial && RepartitionStamp(stamp.encoded())?.partial == false)
        #expect(RepartitionStamp(Array(stamp.encoded().prefix(25))) == nil)
    }

    @Test("A combiner's partials stand at increasing positions inside their epoch, also past 2^24 keys (one position index field's worth), and where earlier versions put them below that")
    func partialPositions() {
        func value(_ p: (offset: Int64, index: Int64)) -> Int64 { p.offset << 24 | p.index }
        // Up to 2^24 partials: (end - 1, index), as the first version of the combiner sent them
        // (an epoch it declared before an upgrade is replayed at the same positions).
        #expect(Combiner.position(ofPartial: 0, count: 3, end: 100) == (99, 0))
        #expect(Combiner.position(ofPartial: 2, count: 3, end: 100) == (99, 2))
        let full = Combiner.partialsPerOffset
        #expect(Combiner.position(ofPartial: full - 1, count: full, end: 100) == (99, Int64(full - 1)))
        // More: consecutive positions ending at the last index of end - 1, reaching back into the epoch.
        let count = full + 5, end: Int64 = 1_000_000_000, start = end - Int64(count)  // an epoch of as many records as keys
        let first = Combiner.position(ofPartial: 0, count: count, end: end)
        let last = Combiner.position(ofPartial: count - 1, count: count, end: end)
        #expect(last == (end - 1, Int64(full - 1)))
        #expect(first == (end - 2, Int64(full - 5)))
        #expect(value(last) - value(first) == Int64(count - 1))
        for i in [0, 4, 5, 6, full - 1, full, count - 2] {
            let p = Combiner.position(ofPartial: i, count: count, end: end), q = Combiner.position(ofPartial: i + 1, count: count, end: end)
            #expect(value(q) == value(p) + 1, "partial \(i)")
            #expect(p.index >= 0 && p.index < Int64(full) && p.offset >= start && p.offset < end, "partial \(i) at \(p)")
            // What the reader makes of it: the same position, as one comparable number.
            let stamp = RepartitionStamp(eventTime: 0, upstreamTask: 0, streamTime: 0, position: .init(topic: "orders", offset: p.offset, index: p.index), partial: true)
            let m = KafkaMessage(topic: repartition, partition: 0, offset: 0, key: nil, value: nil, headers: [KafkaHeader(Headers.repartitionStamp, stamp.encoded())])
            #expect(StreamTask.upstreamPosition(m)?.value == value(p))
        }
    }

    @Test("A repartition record's stamp rides at the start of its value: a task reads such records and the header-stamped records of earlier versions alike")
    func framedValues() async throws {
        let stamp = RepartitionStamp(eventTime: 1000, upstreamTask: 1, streamTime: 1000, position: .init(topic: "orders", offset: 42, index: 0))
        let payload = Array(#"{"user":"u","amount":3}"#.utf8)
        // The wire format: tag 0, the stamp's length (2 bytes, little-endian), the stamp, the payload.
        let framed = stamp.framing(payload)
        #expect(framed == [0, UInt8(stamp.encoded().count), 0] + stamp.encoded() + payload)
        #expect(RepartitionStamp.unframe(framed)?.stamp == stamp)
        #expect(RepartitionStamp.unframe(framed)?.payload == payload)
        // A bare JSON value (an earlier version's record) and a cut-off frame are not framed values.
        #expect(RepartitionStamp.unframe(payload) == nil)
        #expect(RepartitionStamp.unframe(Array(framed.prefix(20))) == nil)
        #expect(RepartitionStamp.unframe([0, 0xFF, 0xFF, 1]) == nil)
        // A reader that never reads the payload takes the stamp alone, with the same answers.
        #expect(RepartitionStamp.ofFramed(framed) == stamp)
        #expect(RepartitionStamp.ofFramed(payload) == nil)
        #expect(RepartitionStamp.ofFramed(Array(framed.prefix(20))) == nil)
        #expect(RepartitionStamp.ofFramed([0, 0xFF, 0xFF, 1]) == nil)

        // The same records, framed and in the header layout of earlier versions, give the same state.
        func framedRecord(offset: Int64, upstream: Int32, inputOffset: Int64, user: String, amount: Int) -> KafkaMessage {
            let s = RepartitionStamp(eventTime: 1000, upstreamTask: upstream, streamTime: 1000, position: .init(topic: "orders", offset: inputOffset, index: 0))
            return KafkaMessage(topic: repartition, partition: 0, offset: offset, key: Array(user.utf8),
                                value: s.framing(Array(#"{"user":"\#(user)","amount":\#(amount)}"#.utf8)), timestamp: 1000)
        }
        let inputs: [(Int32, Int64, String, Int)] = [(0, 5, "a", 2), (1, 9, "b", 7), (0, 6, "a", 4), (1, 10, "a", 1)]
        let framedTask = try task(Collector())
        let headerTask = try task(Collector())
        #expect(try await framedTask.process(inputs.enumerated().map { framedRecord(offset: Int64($0), upstream: $1.0, inputOffset: $1.1, user: $1.2, amount: $1.3) }) == 0)
        #expect(try await headerTask.process(inputs.enumerated().map { record(offset: Int64($0), upstream: $1.0, inputOffset: $1.1, user: $1.2, amount: $1.3) }) == 0)
        let fromFramed = try #require(await framedTask.storeEntries("totals-by-user"))
        #expect(fromFramed.mapValues(\.value) == ["a": .number(7), "b": .number(7)])
        #expect(fromFramed.mapValues(\.value) == (await headerTask.storeEntries("totals-by-user"))?.mapValues(\.value))
        #expect(await framedTask.mergedProcessed == (await headerTask.mergedProcessed), "the same upstream positions are committed")
    }

    @Test("A run that never committed took another upstream's record first: after a later run commits, a restore holds only what that run processed")
    func uncommittedRunStaysUncommitted() async throws {
        let x = record(offset: 0, upstream: 0, inputOffset: 7, user: "x", amount: 1)
        let y = record(offset: 1, upstream: 1, inputOffset: 3, user: "y", amount: 10)

        // Run 1 takes y first (it arrived first there), writes its changelog record, and never commits its offsets.
        let first = Collector()
        let run1 = try task(first)
        try await run1.process([y])
        _ = try await run1.prepareCommit()
        let uncommitted = first.take()

        // Run 2 starts from the same (empty) commit, takes x, and commits.
        let second = Collector()
        let run2 = try task(second)
        try await run2.process([x])
        let commit = try #require(try await run2.prepareCommit())
        let offset = try #require(commit.offsets.first)
        let committed = CommittedPositions.of(sub: sub, partition: 0, committed: [offset.topicPartition: offset])
        #expect(committed == ["orders/0": 7 << 24 + 1], "the commit names the last record taken per upstream input partition: \(offset)")

        let state = try restored(uncommitted + second.take(), committed: committed)
        #expect(state.keys.sorted() == ["x"], "only x was committed; y's record of the uncommitted run stays out: \(state)")
        #expect(state["x"]?.doubleValue == 1, "\(state)")
    }

    @Test("Replayed records at or below the committed position of their upstream are skipped; others count once")
    func replayedRecordsSkipped() async throws {
        let collector = Collector()
        let t = try task(collector)
        let a = record(offset: 0, upstream: 0, inputOffset: 1, user: "x", amount: 1)
        let b = record(offset: 1, upstream: 1, inputOffset: 1, user: "x", amount: 10)
        // The upstream task of orders/0 replayed input offset 1 after a crash (same position), then went on.
        let aAgain = record(offset: 2, upstream: 0, inputOffset: 1, user: "x", amount: 1)
        let c = record(offset: 3, upstream: 0, inputOffset: 2, user: "x", amount: 100)
        try await t.process([a, b, aAgain, c])
        let entries = await t.storeEntries("totals-by-user"); #expect(entries?["x"]?.value.doubleValue == 111, "\(String(describing: entries))")
    }

    @Test("A replay under the Redis fence holds the value writes of covered records until it passed the fence, then writes this run's values: none left from a run that took records in another order")
    func replayHoldsRedisWritesUntilPastTheFence() async throws {
        let x = record(offset: 0, upstream: 0, inputOffset: 7, user: "x", amount: 1)
        let y = record(offset: 1, upstream: 1, inputOffset: 3, user: "x", amount: 10)
        let t = try task(Collector())
        // A run that never committed took y first and wrote total:x = 10 to Redis: its fence covers y.
        let yPosition = try #require(StreamTask.upstreamPosition(y))
        await t.setRedisAppliedThrough([yPosition.key: yPosition.value])

        // This run takes x first (not covered: written), then y (covered: held until past the fence).
        try await t.process([x])
        let first = try #require(try await t.prepareCommit())
        #expect(first.redisCommands == [["HSET", "total:x", "sum", "1"]], "\(first.redisCommands)")
        try await t.process([y])
        let second = try #require(try await t.prepareCommit())
        #expect(second.redisCommands == [["HSET", "total:x", "sum", "11"]], "total:x ends with this run's value 11: \(second.redisCommands)")
    }

    @Test("A key's value goes out when its last record is one the fence does not cover, even while the replay is under the fence")
    func heldValueSupersededByLaterWrite() async throws {
        let y = record(offset: 0, upstream: 1, inputOffset: 3, user: "x", amount: 10)
        let x = record(offset: 1, upstream: 0, inputOffset: 7, user: "x", amount: 1)
        let z = record(offset: 2, upstream: 1, inputOffset: 4, user: "x", amount: 100)
        let t = try task(Collector())
        let zPosition = try #require(StreamTask.upstreamPosition(z))
        await t.setRedisAppliedThrough([zPosition.key: zPosition.value])
        try await t.process([y])
        try await t.process([x])
        let first = try #require(try await t.prepareCommit())
        #expect(first.redisCommands == [["HSET", "total:x", "sum", "11"]], "x after the held y: its value goes out: \(first.redisCommands)")
        try await t.process([z])
        let second = try #require(try await t.prepareCommit())
        #expect(second.redisCommands == [["HSET", "total:x", "sum", "111"]], "past the fence: \(second.redisCommands)")
    }

    /// A fresh task of the stateless sub-topology that writes the repartition topic (input partition 0 of 2).
    func upstreamTask(_ collector: Collector) throws -> StreamTask {
        var logger = Logger(label: "merged-input-test")
        logger.logLevel = .error
        var env = TaskEnvironment(config: config, registry: OperatorRegistry(), collector: collector, globals: GlobalTables(), logger: logger,
                                  stateDir: FileManager.default.temporaryDirectory.path)
        env.partitionCounts[repartition] = 2
        env.partitionCounts["orders"] = 2
        return try StreamTask(sub: TopologyPlan(config: config).subTopologies.first { !$0.fromRepartition }!, partition: 0, env: env)
    }

    func order(_ offset: Int64, user: String = "x", at timestamp: Int64 = 1000) -> KafkaMessage {
        KafkaMessage(topic: "orders", partition: 0, offset: offset, key: nil, value: Array(#"{"user":"\#(user)","amount":1}"#.utf8), timestamp: timestamp)
    }

    /// The progress markers among `sent`: partition, stream time, idle.
    func markers(_ sent: [ProducerRecord]) -> [(partition: Int32?, streamTime: String, idle: Bool)] {
        sent.filter { $0.topic == repartition && $0.value == nil }.map { r in
            func header(_ name: String) -> String { r.headers.first { $0.name == name }.map { String(decoding: $0.value ?? [], as: UTF8.self) } ?? "" }
            return (r.partition, header(Headers.upstreamStreamTime), header(Headers.upstreamIdle) == "1")
        }
    }

    @Test("An upstream task that said idle, then wrote records, says idle again once its input is at its end (its reader would wait for it otherwise)")
    func idleMarkerAfterRecordsSentSinceTheLastIdleMarker() async throws {
        let collector = Collector()
        let upstream = try upstreamTask(collector)
        try await upstream.process([order(0)])
        _ = try await upstream.prepareCommit(inputIdle: true)
        let idle: [Int32] = markers(collector.take()).filter(\.idle).compactMap(\.partition).sorted()
        #expect(idle == [0, 1], "idle: one marker per partition")
        // More input at the same stream time: its record says busy to its partition; at its end the task must say idle there again.
        try await upstream.process([order(1)])
        _ = try await upstream.prepareCommit(inputIdle: true)
        let sent = collector.take()
        let record = try #require(sent.first { $0.topic == repartition && $0.value != nil }, "the record went out: \(sent)")
        let idleAgain: [Int32?] = markers(sent).filter(\.idle).map(\.partition)
        #expect(idleAgain == [record.partition], "idle again where the record went: \(sent.map(\.headers))")
    }

    @Test("An upstream task whose records all go to one partition tells the other partitions its stream time at the commit (their readers would wait for it otherwise)")
    func busyMarkersToPartitionsThatGotNoRecords() async throws {
        let collector = Collector()
        let upstream = try upstreamTask(collector)
        try await upstream.process([order(0, at: 1000)])
        _ = try await upstream.prepareCommit()
        _ = collector.take()
        // Two records of one key, later in event time: they go to one partition only.
        try await upstream.process([order(1, at: 2000), order(2, at: 3000)])
        _ = try await upstream.prepareCommit()
        let sent = collector.take()
        let records = sent.filter { $0.topic == repartition && $0.value != nil }
        let target = try #require(records.first?.partition, "the task picks the partition: \(records)")
        #expect(records.allSatisfy { $0.partition == target })
        let told = markers(sent).map { "\($0.partition.map(String.init) ?? "any") st=\($0.streamTime) idle=\($0.idle)" }
        #expect(told == ["\(1 - target) st=3000 idle=false"], "the partition without records hears the stream time 3000, busy")
        // Nothing new: nothing more to say.
        _ = try await upstream.prepareCommit()
        #expect(markers(collector.take()).isEmpty)
    }
}
