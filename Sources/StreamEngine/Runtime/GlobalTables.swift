import Foundation
import KafkaClient
import Logging
import ServiceLifecycle
import Synchronization

/// Global tables: compacted topics materialised fully on every instance
/// (every partition), for lookups by processors.
///
/// A `Service`: `run()` reads each table's topic from the beginning up to
/// the end offsets it had at start (then `waitUntilReady()` returns), then
/// follows the topics until cancelled or graceful shutdown, and closes its
/// consumers. Each consumer's blocking polls run on that consumer's executor.
public final class GlobalTables: Service, Sendable {
    private let tables = Mutex<[String: [String: JSONValue]]>([:])
    private let specs: [GlobalTableSpec]
    private let kafkaConfig: [String: String]
    private let logger: Logger
    private let ready: (stream: AsyncThrowingStream<Void, any Error>, continuation: AsyncThrowingStream<Void, any Error>.Continuation)
    /// Per table: a change counter and, per key, the counter value of its last change.
    private let changes = Mutex<[String: (sequence: UInt64, keys: [String: UInt64])]>([:])
    /// Per partition of every followed topic: the next offset to read.
    private let positions = Mutex<[TopicPartition: Int64]>([:])

    public init(specs: [GlobalTableSpec] = [], kafkaConfig: [String: String] = [:], logger: Logger = Logger(label: "global-tables")) {
        self.specs = specs
        self.kafkaConfig = kafkaConfig
        self.logger = logger
        self.ready = AsyncThrowingStream.makeStream()
    }

    public func lookup(_ table: String, _ key: String) -> JSONValue? {
        tables.withLock { $0[table]?[key] }
    }

    /// Number of keys of a table.
    public func count(_ table: String) -> Int { tables.withLock { $0[table]?.count ?? 0 } }

    /// Sets (or, with nil, removes) a key of a table: what the table's topic does, and
    /// what the test driver does to feed a table.
    package func apply(_ table: String, key: String, value: JSONValue?) {
        let changed = tables.withLock { t -> Bool in
            let old = t[table]?[key]
            t[table, default: [:]][key] = value
            return old != value
        }
        guard changed else { return }
        changes.withLock { c in
            var entry = c[table] ?? (0, [:])
            entry.sequence += 1
            entry.keys[key] = entry.sequence
            c[table] = entry
        }
    }

    /// Keys of `table` whose value changed after change number `sequence`, and
    /// the table's current change number (pass it as `since` next time; 0 at first).
    public func changedKeys(_ table: String, since sequence: UInt64) -> (keys: [String], sequence: UInt64) {
        changes.withLock { c in
            guard let entry = c[table] else { return ([], 0) }
            return (entry.keys.filter { $0.value > sequence }.map(\.key).sorted(), entry.sequence)
        }
    }

    /// Whether every table has read its topic up to `ends` (next offsets to read, per partition).
    public func hasReached(_ ends: [TopicPartition: Int64]) -> Bool {
        positions.withLock { p in ends.allSatisfy { p[$0.key, default: 0] >= $0.value } }
    }

    /// Returns once every table caught up with its topic's end offsets at
    /// start; throws what stopped `run()` before that.
    public func waitUntilReady() async throws {
        for try await _ in ready.stream { return }
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await self.follow() }
    }

    private struct Follower: Sendable {
        let table: String
        let consumer: KafkaConsumer
        let targets: [TopicPartition: Int64]
    }

    private func follow() async throws {
        var followers: [Follower] = []
        do {
            for spec in specs {
                var followerConfig = kafkaConfig
                followerConfig["enable.partition.eof"] = "true"  // positions past transaction markers
                let consumer = try KafkaConsumer(config: followerConfig, logger: logger)
                followers.append(try await bootstrap(spec, consumer))
            }
        } catch {
            ready.continuation.finish(throwing: error)
            for f in followers { await f.consumer.close() }
            throw error
        }
        ready.continuation.yield()
        ready.continuation.finish()
        // Follow every table until cancelled: one poll each in turn.
        while !Task.isCancelled, !followers.isEmpty {
            for f in followers {
                do {
                    apply(f.table, try await f.consumer.poll(maxMessages: 5000, timeoutMs: 100 / Int32(followers.count)))
                } catch is CancellationError {
                    break
                } catch {
                    logger.warning("global table \(f.table): \(error)")
                }
            }
        }
        for f in followers { await f.consumer.close() }
    }

    private func bootstrap(_ spec: GlobalTableSpec, _ consumer: KafkaConsumer) async throws -> Follower {
        guard let n = try await consumer.topicPartitionCounts()[spec.topic] else {
            await consumer.close()
            throw KafkaError.client("global table \(spec.name): topic \(spec.topic) does not exist")
        }
        let partitions = (0..<Int32(n)).map { TopicPartition(spec.topic, $0) }
        let targets = try await consumer.endOffsets(partitions)
        try consumer.assign(partitions.map { TopicPartitionOffset($0, KafkaOffset.beginning) })
        var lastLog = ContinuousClock.now
        while !hasReached(targets) {
            try Task.checkCancellation()
            apply(spec.name, try await consumer.poll(maxMessages: 5000, timeoutMs: 100))
            if ContinuousClock.now - lastLog >= .seconds(5) {
                lastLog = ContinuousClock.now
                let read = positions.withLock { p in targets.keys.reduce(Int64(0)) { $0 + (p[$1] ?? 0) } }
                logger.info("global table \(spec.name): loading \(spec.topic), \(read) of \(targets.values.reduce(0, +)) records")
            }
        }
        logger.info("global table \(spec.name) ready: \(count(spec.name)) keys from \(spec.topic)")
        return Follower(table: spec.name, consumer: consumer, targets: targets)
    }

    /// Applies a polled batch: values by key, and the positions (end-of-partition events too).
    private func apply(_ table: String, _ batch: KafkaConsumer.Batch) {
        for m in batch.messages {
            apply(table, key: String(decoding: m.key ?? [], as: UTF8.self), value: m.value.flatMap { try? JSONValue.parse($0) })
        }
        positions.withLock { p in
            for m in batch.messages { p[m.topicPartition] = max(p[m.topicPartition] ?? 0, m.offset + 1) }
            for e in batch.partitionEOFs { p[e.topicPartition] = max(p[e.topicPartition] ?? 0, e.offset) }
        }
    }
}
