import Foundation
import HTTPTypes
import Hummingbird
import KafkaClient
import Logging
import StreamEngine
import Synchronization
import ThreadExecutors

/// Interactive queries over the state stores of every instance of the
/// application: `GET /stores`, `GET /stores/{store}/{key}` and
/// `GET /stores/{store}?prefix=&from=&to=&limit=`.
///
/// A key's partition is the one librdkafka's partitioner gives it (the engine
/// writes repartition records keyed by the same key); the instance whose live
/// task holds that partition answers, any other forwards the request to it.
/// A scan asks every instance for its partitions and merges the answers.
struct StoreQueryRoutes: Sendable {
    let plan: TopologyPlan
    let queries: RuntimeQueries?
    let directory: InstanceDirectory?
    let client: ForwardingClient
    let partitionCounts: PartitionCounts
    let selfURL: @Sendable () -> String

    var config: StreamConfig { plan.config }

    /// User stores (the engine's internal de-duplication stores left out), in file order.
    var storeNames: [String] {
        plan.stores.filter { $0.sub.dedupeStore != $0.store }.map(\.store)
    }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/stores") { _, _ in try await listStores() }
        router.get("/stores/:store") { request, context in
            try await scan(store: try context.parameters.require("store"), request: request)
        }
        router.get("/stores/:store/:key") { request, context in
            try await get(store: try context.parameters.require("store"), key: try context.parameters.require("key"), request: request)
        }
    }

    private func checkStore(_ store: String) throws -> SubTopology {
        guard storeNames.contains(store), let sub = plan.subTopology(ofStore: store) else {
            let suggestion = ConfigSuggest.hint(for: store, in: storeNames)
            throw Problem.notFound("unknown store '\(store)'\(suggestion); stores: \(storeNames.joined(separator: ", "))")
        }
        return sub
    }

    func partition(of key: String, store: String) async throws -> (partition: Int32, count: Int32) {
        guard let n = await partitionCounts.count(topic: config.changelogTopic(store: store)) else {
            throw Problem.unavailable("the partition count of store \(store) is not known yet (changelog topic \(config.changelogTopic(store: store)) not found)")
        }
        guard let p = KafkaPartitioner.partition(key: Array(key.utf8), count: n, partitioner: config.kafka["partitioner"] ?? "consistent_random") else {
            throw Problem.badRequest(field: "key", "the key must not be empty")
        }
        return (p, n)
    }

    private func listStores() async throws -> Response {
        let local = queries?.assignment.stores ?? []
        let instances = directory?.live ?? []
        var list: [JSONValue] = []
        for name in storeNames {
            let sub = plan.subTopology(ofStore: name)!
            let n = await partitionCounts.count(topic: config.changelogTopic(store: name))
            var owners = JSONObject()
            for i in instances {
                for p in (i.stores[name] ?? []).sorted() { _ = owners.updateValue(.string(i.url), forKey: String(p)) }
            }
            list.append(.object([
                "name": .string(name), "pipeline": .string(sub.pipeline.name), "subTopology": .string(sub.id),
                "changelog": .string(config.changelogTopic(store: name)),
                "partitions": n.map { .number(Double($0)) } ?? .null,
                "localPartitions": .array(local.filter { $0.store == name }.map { .number(Double($0.partition)) }),
                "owners": .object(owners),
            ]))
        }
        return JSONResponse.make(.object(["applicationId": .string(config.applicationId), "instance": .string(selfURL()), "stores": .array(list)]))
    }

    private func get(store: String, key: String, request: Request) async throws -> Response {
        _ = try checkStore(store)
        let (p, _) = try await partition(of: key, store: store)
        if let queries {
            do {
                guard let entry = try await queries.get(store: store, partition: p, key: key) else {
                    throw Problem.notFound("key '\(key)' not found in store \(store) (partition \(p))")
                }
                return JSONResponse.make(.object([
                    "store": .string(store), "key": .string(key), "partition": .number(Double(p)), "value": entry.value,
                    "expiresAt": entry.expiresAt.map { .string(EventTime.formatISO8601($0)) } ?? .null,
                    "servedBy": .string(selfURL()),
                ]))
            } catch is LiveQueryError {
                // Not held here: forward below.
            }
        }
        if request.headers[HTTPField.Name(ForwardingClient.forwardedHeader)!] != nil {
            throw Problem.unavailable("partition \(p) of store \(store) is not held by this instance (it moved during a rebalance); retry")
        }
        guard let owner = directory?.owner(store: store, partition: p) else {
            throw Problem.unavailable("no instance holds partition \(p) of store \(store) right now (rebalancing or restoring); retry", retryAfter: 1)
        }
        return try await forward(to: owner, request: request)
    }

    private func forward(to owner: InstanceInfo, request: Request) async throws -> Response {
        let path = request.uri.description
        do {
            let answer = try await client.get(baseURL: owner.url, pathAndQuery: path)
            var headers: HTTPFields = [:]
            headers[.contentType] = answer.contentType ?? "application/json"
            headers[HTTPField.Name("X-StreamEngine-Forwarded-To")!] = owner.url
            return Response(status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        } catch {
            throw Problem(status: .badGateway, type: "urn:stream-engine:problem:forwarding-failed", title: "Bad Gateway",
                          detail: "forwarding to \(owner.url), which holds the key's partition, failed: \(error)")
        }
    }

    private func scan(store: String, request: Request) async throws -> Response {
        _ = try checkStore(store)
        let q = request.uri.queryParameters
        let prefix = q.get("prefix"), from = q.get("from"), to = q.get("to")
        var limit = 100
        if let text = q.get("limit") {
            guard let l = Int(text), (1...10_000).contains(l) else {
                throw Problem.badRequest(field: "limit", "limit must be an integer from 1 to 10000, got '\(text)'")
            }
            limit = l
        }
        let n = await partitionCounts.count(topic: config.changelogTopic(store: store)) ?? 0
        let partitioner = config.kafka["partitioner"] ?? "consistent_random"
        func partitionOf(_ key: String) -> Int32 { KafkaPartitioner.partition(key: Array(key.utf8), count: n, partitioner: partitioner) ?? -1 }

        var entries: [JSONValue] = []
        var keys: [String] = []
        var more = false
        var covered = Set<Int32>()
        if let queries {
            let local = await queries.scan(store: store, prefix: prefix, from: from, to: to, limit: limit)
            for e in local.entries {
                keys.append(e.key)
                entries.append(Self.entryJSON(key: e.key, partition: partitionOf(e.key), value: e.value, expiresAt: e.expiresAt))
            }
            more = local.more
            covered.formUnion(queries.assignment.stores.filter { $0.store == store }.map(\.partition))
        }
        let forwarded = request.headers[HTTPField.Name(ForwardingClient.forwardedHeader)!] != nil
        if !forwarded, let directory {
            let others = directory.live.filter { $0.id != directory.me && !($0.stores[store] ?? []).isEmpty }
            let path = request.uri.description
            let answers = await withTaskGroup(of: (InstanceInfo, ForwardedResponse?).self) { group in
                for o in others { group.addTask { (o, try? await client.get(baseURL: o.url, pathAndQuery: path)) } }
                var all: [(InstanceInfo, ForwardedResponse?)] = []
                for await a in group { all.append(a) }
                return all
            }
            for (_, answer) in answers {
                guard let answer, answer.status == 200, let doc = try? JSONValue.parse(answer.body).objectValue else { continue }
                for e in doc["entries"]?.arrayValue ?? [] {
                    guard let k = e.objectValue?["key"]?.stringValue, !keys.contains(k) else { continue }
                    keys.append(k)
                    entries.append(e)
                }
                if doc["more"]?.boolValue == true { more = true }
                for p in doc["partitions"]?.objectValue?["covered"]?.arrayValue ?? [] { if let v = p.intValue { covered.insert(Int32(v)) } }
            }
        }
        let order = keys.indices.sorted { keys[$0] < keys[$1] }
        if order.count > limit { more = true }
        let sorted = order.prefix(limit).map { entries[$0] }
        let missing = (0..<Int32(n)).filter { !covered.contains($0) }
        return JSONResponse.make(.object([
            "store": .string(store), "entries": .array(Array(sorted)), "more": .bool(more),
            "partitions": .object(["covered": .array(covered.sorted().map { .number(Double($0)) }),
                                   "missing": .array(missing.map { .number(Double($0)) })]),
        ]))
    }

    static func entryJSON(key: String, partition: Int32, value: JSONValue, expiresAt: Int64?) -> JSONValue {
        .object(["key": .string(key), "partition": .number(Double(partition)), "value": value,
                 "expiresAt": expiresAt.map { .string(EventTime.formatISO8601($0)) } ?? .null])
    }
}

/// Partition counts of topics, from cluster metadata (all topics at once: on the
/// mock cluster a metadata request naming a topic would create it), cached.
final class PartitionCounts: Sendable {
    private let reader: KafkaConsumer
    private let executor: DedicatedThreadExecutor
    private let cache = Mutex<[String: Int32]>([:])
    private let lastRefresh = Mutex<ContinuousClock.Instant?>(nil)

    /// - Parameter executor: the thread that makes the reader's blocking librdkafka calls.
    init(reader: KafkaConsumer, executor: DedicatedThreadExecutor) {
        self.reader = reader
        self.executor = executor
    }

    func count(topic: String) async -> Int32? {
        if let n = cache.withLock({ $0[topic] }) { return n }
        // At most one metadata round per second for topics not (yet) there.
        let due = lastRefresh.withLock { last -> Bool in
            if let last, ContinuousClock.now - last < .seconds(1) { return false }
            last = ContinuousClock.now
            return true
        }
        guard due else { return nil }
        let reader = self.reader
        guard let counts = try? await executor.run({ try reader.topicPartitionCounts(timeoutMs: 5000) }) else { return nil }
        cache.withLock { c in for (t, n) in counts where n > 0 { c[t] = Int32(n) } }
        return cache.withLock { $0[topic] }
    }
}
