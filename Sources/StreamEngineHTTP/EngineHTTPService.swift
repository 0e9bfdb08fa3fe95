import Foundation
import Hummingbird
import KafkaClient
import Logging
import NIOCore
import ServiceLifecycle
import StreamEngine
import Synchronization
import ThreadExecutors

/// `host:port` the HTTP service listens on.
public struct HTTPListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (port 0: any free port).
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        let host = String(text[..<colon])
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { "\(host):\(port)" }
}

/// Adds routes of an application (e.g. a domain API) to the service's router.
public typealias RouteRegistration = @Sendable (Router<BasicRequestContext>) -> Void

/// The HTTP service of an engine instance, on Hummingbird: interactive queries
/// over the state stores of every instance (`/stores…`, forwarded to the owner of
/// a key), Prometheus metrics (`/metrics`), liveness and readiness (`/health`,
/// `/ready`), the topology (`/topology`), the OpenAPI document (`/openapi.json`),
/// the instances (`/instances`) and the live dashboard (`/`). Applications add
/// their own routes and OpenAPI paths.
///
/// It announces this instance's address and store partitions through Kafka
/// (see ``InstanceDirectory``) so that other instances can forward to it.
public final class EngineHTTPService: Service, Sendable {
    public let config: StreamConfig
    public let listen: HTTPListenAddress
    private let advertisedHost: String?
    private let queries: RuntimeQueries?
    private let admin: (any TopicAdministrator)?
    private let logger: Logger
    private let routes: [RouteRegistration]
    private let openAPI: JSONValue
    private let boundURLBox = Mutex<String?>(nil)
    private let onStart: @Sendable (String) -> Void

    /// - Parameters:
    ///   - config: the application (its `kafka` settings reach the cluster).
    ///   - queries: the running engine's queries; `nil` for an API-only instance (`stream-engine serve`).
    ///   - admin: creates the instances topic where the cluster allows it.
    ///   - advertisedHost: the host other instances reach this one at (default: the listen host).
    ///   - routes: the application's routes.
    ///   - openAPIFragments: OpenAPI documents whose `paths` and `components.schemas` join the engine's.
    ///   - onStart: called with the base URL once the server listens.
    public init(config: StreamConfig, listen: HTTPListenAddress, advertisedHost: String? = nil, queries: RuntimeQueries?,
                admin: (any TopicAdministrator)?, logger: Logger, routes: [RouteRegistration] = [], openAPIFragments: [String] = [],
                onStart: @escaping @Sendable (String) -> Void = { _ in }) {
        self.config = config
        self.listen = listen
        self.advertisedHost = advertisedHost
        self.queries = queries
        self.admin = admin
        self.logger = logger
        self.routes = routes
        self.openAPI = OpenAPIDocument.merged(engine: OpenAPIDocument.engine, fragments: openAPIFragments)
        self.onStart = onStart
        EngineMetrics.bootstrap()
    }

    /// `http://host:port` once listening.
    public var boundURL: String? { boundURLBox.withLock { $0 } }

    public func run() async throws {
        let plan = TopologyPlan(config: config)
        var readerConfig = config.kafka
        readerConfig["group.id"] = config.applicationId
        readerConfig["enable.auto.commit"] = "false"
        let reader = try KafkaConsumer(config: readerConfig, logger: logger)
        // The reader's blocking calls (metadata, offsets) run on one thread of their own.
        let readerThread = DedicatedThreadExecutor(name: "http-kafka-reader")
        do {
            try await serve(plan: plan, reader: reader, readerThread: readerThread)
        } catch {
            readerThread.shutdown()
            await reader.close()
            throw error
        }
        readerThread.shutdown()
        await reader.close()
    }

    private func serve(plan: TopologyPlan, reader: KafkaConsumer, readerThread: DedicatedThreadExecutor) async throws {
        let directory = try InstanceDirectory(applicationId: config.applicationId, kafkaConfig: config.kafka, logger: logger)
        let admin = self.admin

        let urlStream = AsyncStream.makeStream(of: String.self)
        let router = buildRouter(plan: plan, directory: directory, reader: reader, readerThread: readerThread, selfURL: { [self] in self.boundURL ?? "" })
        let advertisedHost = self.advertisedHost ?? (listen.host == "0.0.0.0" || listen.host == "::" ? ProcessInfo.processInfo.hostName : listen.host)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "stream-engine"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                urlStream.continuation.yield("http://\(advertisedHost):\(port)")
                urlStream.continuation.finish()
            },
            logger: logger)
        let queries = self.queries
        let gauges = queries.map { RuntimeGauges(queries: $0, reader: reader, executor: readerThread, logger: logger) }

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await app.runService() }
            var iterator = urlStream.stream.makeAsyncIterator()
            guard let url = await iterator.next() else { return }
            boundURLBox.withLock { $0 = url }
            logger.info("HTTP service listening on \(url)")
            onStart(url)
            group.addTask {
                try await withGracefulShutdownHandler {
                    // Serving does not wait for Kafka: the announcements start once the topic is there.
                    await directory.ensureTopic(admin: admin)
                    try await directory.run(advertisedURL: url) {
                        let a = queries?.assignment
                        var stores: [String: [Int32]] = [:]
                        for s in a?.stores ?? [] { stores[s.store, default: []].append(s.partition) }
                        var partitions: [String: [Int32]] = [:]
                        for tp in a?.partitions ?? [] { partitions[tp.topic, default: []].append(tp.partition) }
                        return (stores, partitions, queries?.isReady ?? true)
                    }
                } onGracefulShutdown: {
                    directory.stop()
                }
            }
            if let gauges {
                group.addTask {
                    await cancelWhenGracefulShutdown { await gauges.run() }
                }
            }
        }
    }

    private func buildRouter(plan: TopologyPlan, directory: InstanceDirectory, reader: KafkaConsumer, readerThread: DedicatedThreadExecutor, selfURL: @escaping @Sendable () -> String) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(ProblemMiddleware(openAPI: self.openAPI))
        let queries = self.queries
        let config = self.config
        let openAPI = self.openAPI.serialized()

        router.get("/health") { _, _ in JSONResponse.make(["status": "ok"]) }
        router.get("/ready") { _, _ -> Response in
            guard let queries else { return JSONResponse.make(["ready": true, "tasks": 0, "restoring": 0]) }
            let a = queries.assignment
            let body: JSONValue = .object([
                "ready": .bool(queries.isReady), "tasks": .number(Double(a.tasks.count)), "restoring": .number(Double(a.pending.count)),
            ])
            guard queries.isReady else {
                let why = !a.running ? "the engine is not processing yet (setting up topics, global tables and Redis, or stopped)" : !a.joined ? "waiting for the consumer group's first assignment"
                    : "\(a.pending.count) assigned partitions are still restoring"
                throw Problem(status: .serviceUnavailable, type: "urn:stream-engine:problem:not-ready", title: "Not Ready", detail: why,
                              extra: body.objectValue ?? [:], retryAfter: 1)
            }
            return JSONResponse.make(body)
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: EngineMetrics.render())))
        }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: openAPI)))
        }
        router.get("/topology") { _, _ in
            JSONResponse.make(.object([
                "applicationId": .string(config.applicationId),
                "dlqTopic": .string(config.dlqTopic),
                "mermaid": .string(TopologyDescriber.mermaid(config)),
                "pipelines": .array(config.pipelines.map { p in
                    .object(["name": .string(p.name), "sources": .array(p.source.topics.map { .string($0) }),
                             "repartition": p.rekeyIndex == nil ? .null : .string(config.repartitionTopic(pipeline: p.name)),
                             "stores": .array(p.storeNames.map { .string($0) })])
                }),
            ]))
        }
        router.get("/instances") { _, _ in
            JSONResponse.make(.object(["self": .string(directory.me), "topic": .string(directory.topic),
                                       "instances": .array(directory.live.map(\.json))]))
        }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        StoreQueryRoutes(plan: plan, queries: queries, directory: directory, client: ForwardingClient(),
                         partitionCounts: PartitionCounts(reader: reader, executor: readerThread), selfURL: selfURL).register(on: router)
        for r in routes { r(router) }
        return router
    }
}
