import Foundation
import KafkaClient
import Logging
import StreamEngine
import Synchronization

/// What an instance tells the others about itself.
public struct InstanceInfo: Sendable, Hashable {
    /// A random id per process.
    public var id: String
    /// Base URL of its HTTP service, e.g. `http://127.0.0.1:8080`.
    public var url: String
    /// Store partitions its live tasks hold.
    public var stores: [String: [Int32]]
    /// Partitions assigned to it, per topic.
    public var partitions: [String: [Int32]]
    /// Every assigned partition's tasks restored and running.
    public var ready: Bool
    /// Wall-clock time of the announcement (epoch ms).
    public var announcedAt: Int64

    var json: JSONValue {
        func map(_ m: [String: [Int32]]) -> JSONValue {
            .object(JSONObject(m.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.array($0.value.sorted().map { .number(Double($0)) })) }))
        }
        return .object(["id": .string(id), "url": .string(url), "stores": map(stores), "partitions": map(partitions),
                        "ready": .bool(ready), "announcedAt": .number(Double(announcedAt))])
    }

    init(id: String, url: String, stores: [String: [Int32]], partitions: [String: [Int32]], ready: Bool, announcedAt: Int64) {
        self.id = id
        self.url = url
        self.stores = stores
        self.partitions = partitions
        self.ready = ready
        self.announcedAt = announcedAt
    }

    init?(json: JSONValue) {
        func map(_ v: JSONValue?) -> [String: [Int32]] {
            var out: [String: [Int32]] = [:]
            for (k, v) in v?.objectValue ?? [:] { out[k] = (v.arrayValue ?? []).compactMap { $0.intValue.map { Int32($0) } } }
            return out
        }
        guard let o = json.objectValue, let id = o["id"]?.stringValue, let url = o["url"]?.stringValue else { return nil }
        self.init(id: id, url: url, stores: map(o["stores"]), partitions: map(o["partitions"]),
                  ready: o["ready"]?.boolValue ?? false, announcedAt: o["announcedAt"]?.intValue ?? 0)
    }
}

/// Instances of one application find each other through Kafka: each announces
/// its HTTP address and the store partitions of its live tasks (like Kafka
/// Streams' `application.server`) to the compacted topic
/// `<application.id>-instances`, keyed by its id, whenever its assignment
/// changes and every few seconds; each reads the whole topic. An announcement
/// older than `expiry` counts as gone (a crashed instance), a clean stop
/// writes a tombstone.
public final class InstanceDirectory: Sendable {
    public let topic: String
    public let me: String
    private let kafkaConfig: [String: String]
    private let logger: Logger
    private let heartbeat: Duration
    private let expiry: Duration
    private let instances = Mutex<[String: InstanceInfo]>([:])
    private let running = Atomic<Bool>(true)
    private let producer: KafkaProducer
    private let reader: KafkaConsumer

    public init(applicationId: String, kafkaConfig: [String: String], logger: Logger,
                heartbeat: Duration = .seconds(2), expiry: Duration = .seconds(10)) throws {
        self.topic = "\(applicationId)-instances"
        self.me = UUID().uuidString.lowercased()
        self.kafkaConfig = kafkaConfig
        self.logger = logger
        self.heartbeat = heartbeat
        self.expiry = expiry
        var pc = kafkaConfig
        pc["message.timeout.ms"] = "5000"
        pc["linger.ms"] = "0"
        producer = try KafkaProducer(config: pc, logger: logger)
        var rc = kafkaConfig
        rc["group.id"] = "\(applicationId)-instances-reader"
        rc["enable.auto.commit"] = "false"
        rc["enable.partition.eof"] = "false"
        rc["fetch.wait.max.ms"] = "50"
        reader = try KafkaConsumer(config: rc, logger: logger)
    }

    /// Creates the topic where it can (a real cluster, the embedded one); on a
    /// `dev-broker` the first announcement creates it (the mock creates topics it is asked about).
    public func ensureTopic(admin: (any TopicAdministrator)?) async {
        guard let admin else { return }
        do {
            if try await admin.partitionCount(topic: topic) == nil {
                try await admin.createTopics([NewTopic(name: topic, partitions: 1, configs: ["cleanup.policy": "compact", "retention.ms": "3600000"])])
            }
        } catch {
            logger.debug("\(topic): not created up front (\(error)); the first announcement creates it")
        }
    }

    /// Live instances (this one included once its announcement came back), by id.
    public var live: [InstanceInfo] {
        let now = Self.nowMillis()
        let limit = Int64(expiry.components.seconds * 1000)
        return instances.withLock { Array($0.values) }.filter { now - $0.announcedAt <= limit }.sorted { $0.url < $1.url }
    }

    /// The live instance (other than this one) whose tasks hold `partition` of `store`.
    public func owner(store: String, partition: Int32) -> InstanceInfo? {
        live.filter { $0.id != me && ($0.stores[store] ?? []).contains(partition) }.max { $0.announcedAt < $1.announcedAt }
    }

    /// Announces this instance at `advertisedURL` (its base URL as others reach it) and
    /// reads the others' announcements until `stop()`; `current` gives this instance's state each round.
    public func run(advertisedURL url: String, current: @escaping @Sendable () -> (stores: [String: [Int32]], partitions: [String: [Int32]], ready: Bool)) async throws {
        let readerDone = startReader()
        var last: (stores: [String: [Int32]], partitions: [String: [Int32]], ready: Bool)?
        var lastSent = ContinuousClock.now - heartbeat
        while running.load(ordering: .acquiring) {
            let now = current()
            let changed = last.map { $0.stores != now.stores || $0.partitions != now.partitions || $0.ready != now.ready } ?? true
            if changed || ContinuousClock.now - lastSent >= heartbeat {
                let info = InstanceInfo(id: me, url: url, stores: now.stores, partitions: now.partitions, ready: now.ready, announcedAt: Self.nowMillis())
                do {
                    _ = try await producer.sendAndWait(ProducerRecord(topic: topic, key: Array(me.utf8), value: info.json.serialized()))
                    last = now
                    lastSent = ContinuousClock.now
                } catch {
                    logger.warning("announcing this instance on \(topic) failed (retrying): \(error)")
                }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        // Leave: a tombstone tells the others at once (if they ever heard of this instance).
        if last != nil { _ = try? await producer.sendAndWait(ProducerRecord(topic: topic, key: Array(me.utf8), value: nil)) }
        await readerDone.value
        await reader.close()
        await producer.close()
    }

    public func stop() { running.store(false, ordering: .releasing) }

    private func startReader() -> Task<Void, Never> {
        let reader = self.reader
        let topic = self.topic
        let logger = self.logger
        let running: @Sendable () -> Bool = { [self] in self.running.load(ordering: .acquiring) }
        return Task {
            await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
                let thread = Thread { [self] in
                    var assigned = false
                    while running() {
                        if !assigned {
                            // Assign every partition from the beginning, once the topic exists.
                            if let counts = try? reader.topicPartitionCounts(timeoutMs: 2000), let n = counts[topic], n > 0 {
                                try? reader.assign((0..<Int32(n)).map { TopicPartitionOffset(topic, $0, KafkaOffset.beginning) })
                                assigned = true
                            } else {
                                Thread.sleep(forTimeInterval: 0.2)
                                continue
                            }
                        }
                        do {
                            let batch = try reader.pollBatch(maxMessages: 500, timeoutMs: 100)
                            if !batch.messages.isEmpty { apply(batch.messages) }
                        } catch {
                            logger.debug("reading \(topic): \(error)")
                            Thread.sleep(forTimeInterval: 0.2)
                        }
                    }
                    cont.resume()
                }
                thread.name = "instance-directory"
                thread.start()
            }
        }
    }

    private func apply(_ messages: [KafkaMessage]) {
        instances.withLock { map in
            for m in messages {
                let key = String(decoding: m.key ?? [], as: UTF8.self)
                guard let value = m.value else { map.removeValue(forKey: key); continue }
                if let json = try? JSONValue.parse(value), let info = InstanceInfo(json: json) { map[key] = info }
            }
        }
    }

    static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
