import Foundation
import KafkaClient
import Logging
import StreamEngine
import Synchronization

/// Runs a compiled topology in memory, with no Kafka and no Redis: feed records into its
/// source topics, move stream and wall-clock time, then read its stores, its Redis writes,
/// its output and changelog topics and its dead letters (Kafka Streams' `TopologyTestDriver`).
///
/// The tasks are the engine's own (`StreamTask`): the same decoding, steps, windows,
/// processors, dead-lettering, changelog records and Redis commands as in production. What
/// the driver replaces is around them: records they send are kept in memory (records sent to
/// a repartition topic are fed to the sub-topology that reads it, as Kafka would), and a
/// ``commit()`` applies the Redis writes of each task's commit to an ``InMemoryRedis``.
///
/// Partitions: with `partitions: 1` (the default) every record goes to partition 0. With
/// more, records go to the partition given, or by a stable hash of the key (not Kafka's
/// murmur2: tests that care choose partitions themselves).
///
/// Not thread-safe: use one driver from one test.
public final class TopologyTestDriver {
    /// The configuration it runs.
    public let config: StreamConfig
    /// Its sub-topologies.
    public let plan: TopologyPlan
    /// Partitions of every topic.
    public let partitions: Int32
    /// Global tables the processors look up; fill them with ``pipeGlobal(table:key:value:)``.
    public let globals = GlobalTables()
    /// What the committed Redis writes left behind.
    public private(set) var redis = InMemoryRedis()

    private var tasks: [(sub: SubTopology, partition: Int32, task: StreamTask)] = []
    private let collector = MemoryCollector()
    private var nextOffsets: [TopicPartition: Int64] = [:]
    private var topics: [String: [TestRecord]] = [:]
    private var sinceCommit: Duration = .zero

    /// Compiles `config` with `registry`'s operators.
    public init(config: StreamConfig, registry: OperatorRegistry = OperatorRegistry(), partitions: Int32 = 1) throws {
        precondition(partitions >= 1, "partitions must be at least 1")
        self.config = config
        self.plan = TopologyPlan(config: config)
        self.partitions = partitions
        var logger = Logger(label: "topology-test-driver")
        logger.logLevel = .error
        var env = TaskEnvironment(
            config: config, registry: registry, collector: collector, globals: globals, logger: logger,
            stateDir: FileManager.default.temporaryDirectory.appendingPathComponent("topology-test-driver").path)
        for topic in plan.subTopologies.flatMap(\.sourceTopics) { env.partitionCounts[topic] = Int(partitions) }
        for sub in plan.subTopologies {
            for p in 0..<partitions { tasks.append((sub, p, try StreamTask(sub: sub, partition: p, env: env))) }
        }
    }

    /// Loads `yaml` (diagnostics name the file `test.yaml`) and compiles it.
    public convenience init(yaml: String, registry: OperatorRegistry = OperatorRegistry(), partitions: Int32 = 1) throws {
        let config = try ConfigLoader.load(yaml: yaml, file: "test.yaml", registry: registry.names, environment: [:])
        try self.init(config: config, registry: registry, partitions: partitions)
    }

    // MARK: Input

    /// Feeds one record to every sub-topology reading `topic` and runs everything it causes
    /// (repartitioned records included) to the end.
    ///
    /// - Parameters:
    ///   - value: the raw value bytes (nil: no value), e.g. malformed JSON for dead-letter tests.
    ///   - timestamp: the Kafka record timestamp (epoch ms), used where the source has no `timestamp` field.
    public func pipeInput(topic: String, key: String? = nil, bytes value: [UInt8]?, timestamp: Int64? = nil, partition: Int32? = nil) async throws {
        let p = partition ?? partitionFor(key: key)
        let message = KafkaMessage(
            topic: topic, partition: p, offset: take(TopicPartition(topic, p)), key: key.map { Array($0.utf8) }, value: value,
            timestamp: timestamp)
        try await deliver(message)
        try await drain()
    }

    /// Feeds a record whose value is `value`'s text.
    public func pipeInput(topic: String, key: String? = nil, value: String, timestamp: Int64? = nil, partition: Int32? = nil) async throws {
        try await pipeInput(topic: topic, key: key, bytes: Array(value.utf8), timestamp: timestamp, partition: partition)
    }

    /// Feeds a record whose value is `value` serialised.
    public func pipeInput(topic: String, key: String? = nil, json value: JSONValue, timestamp: Int64? = nil, partition: Int32? = nil) async throws {
        try await pipeInput(topic: topic, key: key, bytes: value.serialized(), timestamp: timestamp, partition: partition)
    }

    /// Sets a key of a global table (nil removes it), as a record on its topic would.
    public func pipeGlobal(table: String, key: String, value: JSONValue?) {
        globals.apply(table, key: key, value: value)
    }

    // MARK: Time

    /// Moves every task's stream time to `time` (epoch ms) without a record: windows that are
    /// due close and their results flow on, as when a later record arrives.
    public func advanceStreamTime(to time: Int64) async throws {
        for t in tasks { try await t.task.advanceStreamTime(to: time) }
        try await drain()
    }

    /// Moves the wall clock: commits when `commit.interval.ms` has passed since the last commit.
    public func advanceWallClockTime(by duration: Duration) async throws {
        sinceCommit += duration
        if sinceCommit >= .milliseconds(config.commitIntervalMs) { try await commit() }
    }

    /// Commits every task now, as the runtime does every `commit.interval.ms`: processors'
    /// periodic work runs, expired store entries are removed, changelog records written, and
    /// the Redis writes (the records', then the periodic work's) applied to ``redis``.
    public func commit() async throws {
        sinceCommit = .zero
        for t in tasks {
            guard let commit = try await t.task.prepareCommit() else { continue }
            for command in commit.redisCommands + commit.punctuationCommands { try redis.apply(command) }
            await t.task.markCommitted(commit.tag)
        }
        try await drain()
    }

    // MARK: Output

    /// Every record written to `topic` so far (outputs, repartition, changelog, dead-letter topics), in order.
    public func records(_ topic: String) -> [TestRecord] { topics[topic] ?? [] }

    /// The dead-letter topic's records.
    public var deadLetters: [TestRecord] { records(config.dlqTopic) }

    /// The changelog records of `store`.
    public func changelog(store: String) -> [TestRecord] { records(config.changelogTopic(store: store)) }

    /// The current entries of `store` over all partitions (expired entries go at a commit).
    public func store(_ name: String) async -> [String: StoreEntry] {
        var out: [String: StoreEntry] = [:]
        for t in tasks {
            if let entries = await t.task.storeEntries(name) { out.merge(entries) { $1 } }
        }
        return out
    }

    /// Input records the tasks processed (repartitioned ones included), and how many of
    /// them went to the dead-letter topic.
    public func counts() async -> (processed: Int, deadLettered: Int) {
        var processed = 0
        var deadLettered = 0
        for t in tasks {
            processed += await t.task.recordsProcessed
            deadLettered += await t.task.recordsDeadLettered
        }
        return (processed, deadLettered)
    }

    /// The values of `store` by key.
    public func storeValues(_ name: String) async -> [String: JSONValue] {
        await store(name).mapValues(\.value)
    }

    // MARK: Plumbing

    private func partitionFor(key: String?) -> Int32 {
        guard partitions > 1, let key else { return 0 }
        var hash: UInt32 = 2_166_136_261  // FNV-1a
        for b in key.utf8 { hash = (hash ^ UInt32(b)) &* 16_777_619 }
        return Int32(hash % UInt32(partitions))
    }

    private func take(_ tp: TopicPartition) -> Int64 {
        defer { nextOffsets[tp, default: 0] += 1 }
        return nextOffsets[tp, default: 0]
    }

    private func deliver(_ message: KafkaMessage) async throws {
        for t in tasks where t.partition == message.partition && t.sub.sourceTopics.contains(message.topic) {
            try await t.task.process([message])
        }
    }

    /// Files what the tasks sent; repartitioned records go on to their readers, until nothing is left.
    private func drain() async throws {
        let repartition = Set(plan.repartitionTopics)
        while true {
            let sent = collector.take()
            if sent.isEmpty { return }
            for r in sent {
                let key = r.key.map { String(decoding: $0, as: UTF8.self) }
                let p = r.partition ?? partitionFor(key: key)
                let message = KafkaMessage(
                    topic: r.topic, partition: p, offset: take(TopicPartition(r.topic, p)), key: r.key, value: r.value,
                    headers: r.headers, timestamp: r.timestamp)
                topics[r.topic, default: []].append(TestRecord(message))
                if repartition.contains(r.topic) { try await deliver(message) }
            }
        }
    }
}

/// A record the driver holds: what a consumer of the topic would read.
public struct TestRecord: Sendable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    public let key: String?
    /// The raw value (nil: a tombstone).
    public let bytes: [UInt8]?
    public let headers: [KafkaHeader]
    public let timestamp: Int64?

    init(_ m: KafkaMessage) {
        topic = m.topic
        partition = m.partition
        offset = m.offset
        key = m.key.map { String(decoding: $0, as: UTF8.self) }
        bytes = m.value
        headers = m.headers
        timestamp = m.timestamp
    }

    /// The value parsed as JSON (nil for a tombstone or a value that is not JSON).
    public var value: JSONValue? { bytes.flatMap { try? JSONValue.parse($0) } }

    /// The value of a header as text.
    public func header(_ name: String) -> String? {
        headers.last { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
    }
}

/// Keeps what tasks send, for the driver to file.
private final class MemoryCollector: RecordCollector {
    private let sent = Mutex<[ProducerRecord]>([])

    func trySend(_ record: ProducerRecord) throws(KafkaError) -> Bool {
        sent.withLock { $0.append(record) }
        return true
    }

    func send(_ record: ProducerRecord) async throws {
        sent.withLock { $0.append(record) }
    }

    func take() -> [ProducerRecord] {
        sent.withLock { records in
            defer { records = [] }
            return records
        }
    }
}
