import ArgumentParser
import CLISupport
import Foundation
import KafkaClient
import Logging
import RedisClient
import ServiceLifecycle
import StreamEngine
import StreamEngineHTTP

/// `stream-engine serve`: an API-only instance. It runs no pipeline: shop reads
/// come from Redis, writes go to Kafka, and store queries are forwarded to the
/// `run` instances that hold the keys (found through `<application.id>-instances`).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API of a running application without running its pipelines.",
        discussion: """
            Needs the application's Kafka cluster (--bootstrap-servers or the file's kafka bootstrap.servers) and \
            Redis (--redis-url or the file's redis url). Store queries are forwarded to the `run --http` instances \
            holding the keys. SIGTERM or SIGINT stops it.
            """)

    @OptionGroup var job: JobConfigOptions

    @Option(help: "Redis URL redis://[user:password@]host:port/db (overrides redis url of the file).")
    var redisUrl: String?

    @OptionGroup var httpOptions: HTTPOptions

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap(defaultLevel: .info)
        let registry = makeRegistry()
        let config = try job.load(registry: registry)
        guard !config.usesEmbeddedCluster else {
            throw CLIFailure("serve needs the application's Kafka cluster: pass --bootstrap-servers (or set kafka bootstrap.servers)", exitCode: ExitStatus.usage)
        }
        guard let address = try httpOptions.address(config: config) ?? HTTPListenAddress(parsing: "127.0.0.1:8080") else { return }
        var redisURL: RedisURL?
        if let text = redisUrl ?? config.redisURL {
            do { redisURL = try RedisURL(text) } catch { throw CLIFailure("Redis URL \(text): \(error)", exitCode: ExitStatus.usage) }
        } else {
            logger.warning("no Redis URL (--redis-url): the shop routes are not served, only the engine's")
        }
        let http = try HTTPServiceSetup(
            config: config, address: address, advertisedHost: httpOptions.advertisedHost, queries: nil,
            admin: try? KafkaAdmin(config: config.kafka, logger: logger, timeout: .seconds(5)), redisURL: redisURL, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: http.service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await http.close()
            throw CLIFailure(RunCommand.oneLine(error))
        }
        await http.close()
    }
}
