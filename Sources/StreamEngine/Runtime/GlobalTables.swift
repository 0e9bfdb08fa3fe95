import Foundation
import KafkaClient
import Logging
import Synchronization

/// Global tables: compacted topics materialised fully on every instance
/// (every partition), for lookups by processors. A dedicated thread keeps
/// each one up to date; `bootstrap` blocks until each has caught up with the
/// end offsets it had when the runtime started.
public final class GlobalTables: Sendable {
    private let tables = Mutex<[String: [String: JSONValue]]>([:])
    /// Per table: a change counter and, per key, the counter value of its last change.
    private let changes = Mutex<[String: (sequence: UInt64, keys: [String: UInt64])]>([:])
    /// Per partition of every followed topic: the next offset to read.
    private let positions = Mutex<[TopicPartition: Int64]>([:])
    private let running = Atomic<Bool>(true)
    private let stopped = DispatchSemaphore(value: 0)
    private let threadCount = Mutex(0)

    public init() {}

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

    /// Reads `topic` from the beginning into `table` until its current end,
    /// then keeps following it on a thread of its own until `stop()`.
    func start(table: String, topic: String, kafkaConfig: [String: String], logger: Logger) async throws {
        var followerConfig = kafkaConfig
        followerConfig["enable.partition.eof"] = "true"  // positions past transaction markers
        let consumer = try KafkaConsumer(config: followerConfig, logger: logger)
        guard let n = try consumer.partitionCount(topic: topic) else {
            throw KafkaError.client("global table \(table): topic \(topic) does not exist")
        }
        let partitions = (0..<Int32(n)).map { TopicPartition(topic, $0) }
        var endOffsets: [TopicPartition: Int64] = [:]
        for tp in partitions { endOffsets[tp] = try consumer.watermarks(tp).high }
        let targets = endOffsets
        try consumer.assign(partitions.map { TopicPartitionOffset($0, KafkaOffset.beginning) })
        threadCount.withLock { $0 += 1 }
        let ready = AsyncStream<Void>.makeStream()
        let thread = Thread { [self] in
            var positions: [TopicPartition: Int64] = [:]
            var signalled = false
            while running.load(ordering: .acquiring) {
                do {
                    let batch = try consumer.pollBatch(maxMessages: 5000, timeoutMs: 100)
                    for m in batch.messages {
                        positions[m.topicPartition] = m.offset + 1
                        self.positions.withLock { $0[m.topicPartition] = m.offset + 1 }
                        let key = String(decoding: m.key ?? [], as: UTF8.self)
                        let value = m.value.flatMap { try? JSONValue.parse($0) }
                        apply(table, key: key, value: value)
                    }
                    for e in batch.partitionEOFs {
                        positions[e.topicPartition] = max(positions[e.topicPartition] ?? 0, e.offset)
                        self.positions.withLock { $0[e.topicPartition] = max($0[e.topicPartition] ?? 0, e.offset) }
                    }
                } catch {
                    logger.warning("global table \(table): \(error)")
                }
                if !signalled, targets.allSatisfy({ positions[$0.key, default: 0] >= $0.value }) {
                    signalled = true
                    ready.continuation.yield()
                    ready.continuation.finish()
                }
            }
            consumer.close()
            stopped.signal()
        }
        thread.name = "global-table-\(table)"
        thread.start()
        for await _ in ready.stream { break }
        logger.info("global table \(table) ready: \(count(table)) keys from \(topic)")
    }

    /// Stops the follower threads.
    func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        for _ in 0..<threadCount.withLock({ $0 }) { stopped.wait() }
    }
}
