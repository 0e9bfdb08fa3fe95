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

    func apply(_ table: String, key: String, value: JSONValue?) {
        tables.withLock { $0[table, default: [:]][key] = value }
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
                let consumer = try KafkaConsumer(config: kafkaConfig, logger: logger)
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
                    apply(f.table, try await f.consumer.poll(maxMessages: 5000, timeoutMs: 100 / Int32(followers.count)).messages)
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
        var positions: [TopicPartition: Int64] = [:]
        var lastLog = ContinuousClock.now
        while !targets.allSatisfy({ positions[$0.key, default: 0] >= $0.value }) {
            try Task.checkCancellation()
            let messages = try await consumer.poll(maxMessages: 5000, timeoutMs: 100).messages
            for m in messages { positions[m.topicPartition] = m.offset + 1 }
            apply(spec.name, messages)
            if ContinuousClock.now - lastLog >= .seconds(5) {
                lastLog = ContinuousClock.now
                logger.info("global table \(spec.name): loading \(spec.topic), \(positions.values.reduce(0, +)) of \(targets.values.reduce(0, +)) records")
            }
        }
        logger.info("global table \(spec.name) ready: \(count(spec.name)) keys from \(spec.topic)")
        return Follower(table: spec.name, consumer: consumer, targets: targets)
    }

    private func apply(_ table: String, _ messages: [KafkaMessage]) {
        guard !messages.isEmpty else { return }
        let decoded = messages.map { m in (String(decoding: m.key ?? [], as: UTF8.self), m.value.flatMap { try? JSONValue.parse($0) }) }
        tables.withLock { all in
            for (key, value) in decoded { all[table, default: [:]][key] = value }
        }
    }
}
