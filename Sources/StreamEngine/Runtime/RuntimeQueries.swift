import KafkaClient
import Synchronization

/// A store partition held by a live task of this instance.
public struct LiveStorePartition: Sendable, Hashable {
    /// The store's name in `topologies.yaml`.
    public var store: String
    /// The partition (of the sub-topology's source topics, hence of the changelog).
    public var partition: Int32
    /// The task holding it.
    public var task: TaskID
}

/// A value read from a live store.
public struct LiveStoreEntry: Sendable, Hashable {
    public var key: String
    public var value: JSONValue
    /// Event-time expiry (epoch ms), if the store has a TTL.
    public var expiresAt: Int64?
}

/// The instance's assignment and tasks as last published by the task manager.
public struct RuntimeAssignment: Sendable {
    /// Input and repartition partitions assigned to this instance.
    public var partitions: [TopicPartition]
    /// Store partitions of started (restored, processing) tasks.
    public var stores: [LiveStorePartition]
    /// Tasks started and running.
    public var tasks: [TaskID]
    /// Partitions assigned whose tasks are not started (restoring) yet.
    public var pending: [TopicPartition]
    /// True once the first assignment of the consumer group arrived.
    public var joined: Bool
    /// True while the runtime runs (false before it subscribed and after it stopped).
    public var running: Bool
}

/// Read-only queries on a running engine instance: its assignment, live
/// tasks and the contents of their state stores (interactive queries).
///
/// The task manager publishes every change of its task set here; reads of a
/// store go through the task actor that owns it, so they see the store between
/// two batches, never in the middle of one.
public final class RuntimeQueries: Sendable {
    private struct State {
        var tasks: [TaskID: StreamTask] = [:]
        var storesOf: [TaskID: [String]] = [:]
        var assigned: [TopicPartition] = []
        var pending: [TopicPartition] = []
        var joined = false
        var running = false
    }
    private let state = Mutex(State())

    public init() {}

    /// The current assignment and tasks.
    public var assignment: RuntimeAssignment {
        state.withLock { s in
            let stores = s.storesOf.flatMap { id, names in names.map { LiveStorePartition(store: $0, partition: id.partition, task: id) } }
                .sorted { ($0.store, $0.partition) < ($1.store, $1.partition) }
            return RuntimeAssignment(
                partitions: s.assigned.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) },
                stores: stores, tasks: s.tasks.keys.sorted(), pending: s.pending, joined: s.joined, running: s.running)
        }
    }

    /// Every assigned partition has its tasks restored and processing.
    public var isReady: Bool { state.withLock { $0.running && $0.joined && $0.pending.isEmpty } }

    /// The value of `key` in the local partition `partition` of `store`;
    /// `nil` when the key is absent. Throws `notLocal` when no live task holds that partition.
    public func get(store: String, partition: Int32, key: String) async throws(LiveQueryError) -> LiveStoreEntry? {
        let task = try owner(store: store, partition: partition)
        return await task.queryEntry(store: store, key: key)
    }

    /// Keys of the local partitions of `store` in key order: those with `prefix`, within
    /// `[from, to]` (inclusive), at most `limit`; also tells whether more matched.
    public func scan(store: String, prefix: String?, from: String?, to: String?, limit: Int) async -> (entries: [LiveStoreEntry], more: Bool) {
        let tasks: [StreamTask] = state.withLock { s in
            s.storesOf.filter { $0.value.contains(store) }.keys.sorted().compactMap { s.tasks[$0] }
        }
        var all: [LiveStoreEntry] = []
        for task in tasks {
            all += await task.queryScan(store: store, prefix: prefix, from: from, to: to, limit: limit + 1)
        }
        all.sort { $0.key < $1.key }
        return (Array(all.prefix(limit)), all.count > limit)
    }

    /// Number of keys per local store partition.
    public func keyCounts() async -> [LiveStorePartition: Int] {
        let live: [(StreamTask, [String])] = state.withLock { s in s.storesOf.compactMap { id, names in s.tasks[id].map { ($0, names) } } }
        var counts: [LiveStorePartition: Int] = [:]
        for (task, names) in live {
            let c = await task.queryCounts()
            for n in names { counts[LiveStorePartition(store: n, partition: task.partition, task: task.id)] = c[n] ?? 0 }
        }
        return counts
    }

    private func owner(store: String, partition: Int32) throws(LiveQueryError) -> StreamTask {
        let found: StreamTask? = state.withLock { s in
            s.storesOf.first { $0.key.partition == partition && $0.value.contains(store) }.flatMap { s.tasks[$0.key] }
        }
        guard let found else { throw .notLocal(store: store, partition: partition) }
        return found
    }

    // MARK: Published by the runtime

    func setRunning(_ running: Bool) {
        state.withLock {
            $0.running = running
            if !running { $0.tasks = [:]; $0.storesOf = [:]; $0.assigned = []; $0.pending = [] }
        }
    }

    /// The task manager's tasks and partitions after a change.
    func publish(tasks: [TaskID: StreamTask], assigned: some Sequence<TopicPartition>, pending: [TopicPartition]) {
        let storesOf = tasks.mapValues { t in t.sub.stores.filter { $0 != t.sub.dedupeStore } }
        state.withLock {
            $0.tasks = tasks
            $0.storesOf = storesOf
            $0.assigned = Array(Set(assigned).union(pending))
            $0.pending = pending
            $0.joined = true
        }
    }
}

/// Why a live query cannot be answered here.
public enum LiveQueryError: Error, Sendable, CustomStringConvertible {
    /// No live task of this instance holds the partition.
    case notLocal(store: String, partition: Int32)
    public var description: String {
        switch self {
        case .notLocal(let store, let partition): "partition \(partition) of store \(store) is not held by a live task of this instance"
        }
    }
}

extension StreamTask {
    func queryEntry(store: String, key: String) -> LiveStoreEntry? {
        guard let e = stores[store]?.entry(key) else { return nil }
        return LiveStoreEntry(key: key, value: e.value, expiresAt: e.expiresAt)
    }

    func queryScan(store: String, prefix: String?, from: String?, to: String?, limit: Int) -> [LiveStoreEntry] {
        guard let s = stores[store] else { return [] }
        // Select first, then sort only the matches: a narrow range of a big store stays cheap.
        var keys: [String] = []
        for (key, _) in s.allEntries {
            if let prefix, !key.hasPrefix(prefix) { continue }
            if let from, key < from { continue }
            if let to, key > to { continue }
            keys.append(key)
        }
        keys.sort()
        return keys.prefix(limit).compactMap { key in s.entry(key).map { LiveStoreEntry(key: key, value: $0.value, expiresAt: $0.expiresAt) } }
    }

    func queryCounts() -> [String: Int] { stores.mapValues(\.count) }
}

extension Duration {
    /// The duration in whole nanoseconds (for metrics timers).
    var totalNanoseconds: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}
