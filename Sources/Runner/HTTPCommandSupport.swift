import ArgumentParser
import CLISupport
import KafkaClient
import Logging
import RedisClient
import ServiceLifecycle
import ShopAPI
import StreamEngine
import StreamEngineHTTP

/// `--http` and `--advertised-host` of `run` and `serve`.
struct HTTPOptions: ParsableArguments {
    @Option(name: .customLong("http"), help: ArgumentHelp(
        "Serve the HTTP API, metrics and dashboard on HOST:PORT (overrides http listen of the file; port 0 picks a free port).",
        valueName: "HOST:PORT"))
    var listen: String?

    @Option(help: "The host other instances reach this one at, for forwarded store queries (default: the --http host).")
    var advertisedHost: String?

    /// The listen address from the flag or the file; nil when neither asks for HTTP.
    func address(config: StreamConfig) throws -> HTTPListenAddress? {
        guard let text = listen ?? config.httpListen else { return nil }
        guard let a = HTTPListenAddress(parsing: text) else {
            throw CLIFailure("invalid --http address '\(text)'; expected HOST:PORT such as 127.0.0.1:8080", exitCode: ExitStatus.usage)
        }
        return a
    }
}

/// The HTTP service of an instance: the engine's routes plus the shop's when Redis is known.
struct HTTPServiceSetup {
    let service: EngineHTTPService
    let shop: ShopAPI?

    init(config: StreamConfig, address: HTTPListenAddress, advertisedHost: String?, queries: RuntimeQueries?,
         admin: (any TopicAdministrator)?, redisURL: RedisURL?, logger: Logger) throws {
        EngineMetrics.bootstrap()
        let shop = try redisURL.map { try ShopAPI(config: config, redisURL: $0, logger: logger) }
        self.shop = shop
        service = EngineHTTPService(
            config: config, listen: address, advertisedHost: advertisedHost, queries: queries, admin: admin, logger: logger,
            routes: shop.map { [$0.routes] } ?? [], openAPIFragments: shop == nil ? [] : [ShopAPI.openAPI],
            onStart: { url in printLine("HTTP service: \(url) (dashboard \(url)/, metrics \(url)/metrics)") })
    }

    func close() async {
        await shop?.close()
    }
}
