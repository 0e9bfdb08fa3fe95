import ArgumentParser
import CLISupport
import Foundation
import KafkaClient
import Logging
import MariaDBClient
import RedisClient
import ServiceLifecycle
import StreamEngine
import StreamEngineHTTP
import Synchronization
import ThreadExecutors

/// `stream-engine run`: runs every pipeline of the configuration until
/// SIGTERM/SIGINT, or with `--stop-at-end` until the input is consumed.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the pipelines of a topologies file.",
        discussion: """
            Kafka: --bootstrap-servers, else the file's kafka bootstrap.servers; with neither, an embedded \
            3-broker cluster starts inside this process and its bootstrap list is printed (other processes such \
            as kcat can connect to it while the job runs). Redis: --redis-url, else the file's redis url; with \
            neither and redis sinks present, a local redis-server starts on a free port and its URL is printed. \
            MySQL/MariaDB for sql sinks: --sql-url, else the file's sql url; with neither, a private mariadbd starts \
            (its own data directory in a temporary folder, a free port) and its URL is printed without the password.

            SIGTERM or SIGINT stops the job gracefully: in-flight records are finished, sinks flushed, offsets \
            committed and snapshots written. A second signal exits at once with code 130, like a crash: nothing more \
            is committed, and the next run processes the uncommitted records again. With --stop-at-end the job exits once every input partition is \
            consumed up to the end offset it had at start and everything is committed. A summary line ends the run; \
            on failure the reason is printed as `stream-engine: <reason>` and the exit code is 1.
            """)

    @OptionGroup var job: JobConfigOptions

    @Option(help: "Redis URL redis://[user:password@]host:port/db (overrides redis url of the file).")
    var redisUrl: String?

    @Option(help: ArgumentHelp("MySQL/MariaDB URL mysql://user:password@host:port/database for sql sinks (overrides sql url of the file; the password is never printed).", valueName: "url"))
    var sqlUrl: String?

    @Option(help: "Directory of the local state-store snapshots.")
    var stateDir = "state"

    @Flag(help: "Exit 0 once the input present at start is consumed and committed.")
    var stopAtEnd = false

    @Option(help: "Static group membership: this instance's group.instance.id (unique per instance; a restart with the same id takes its partitions back).")
    var instanceId: String?

    @Option(help: "Warm copies of the stores of tasks on other instances (replaces defaults.num.standby.replicas; 0: none; any number above 0 keeps a copy of every store partition this instance does not own).")
    var standbyReplicas: Int?

    @OptionGroup var httpOptions: HTTPOptions

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap(defaultLevel: .info)
        let registry = makeRegistry()
        var config = try job.load(registry: registry)

        // Kafka: external, or embedded in this process for as long as the job runs.
        var cluster: EmbeddedKafkaCluster?
        let connection: KafkaConnection
        if config.usesEmbeddedCluster {
            do {
                let embedded = try await runOnDedicatedThread("embedded-kafka") { try EmbeddedKafkaCluster(brokers: 3, logger: logger) }
                cluster = embedded
                connection = .embedded(embedded)
                printLine("embedded Kafka cluster (3 brokers): \(embedded.bootstrapServers)")
            } catch {
                throw CLIFailure("cannot start the embedded Kafka cluster: \(error)")
            }
        } else {
            connection = .external(config.kafka)
        }

        // Redis: configured, or a local redis-server when sinks need one.
        var localRedis: LocalRedisServer?
        var redisURL: RedisURL?
        if let text = redisUrl ?? config.redisURL {
            do { redisURL = try RedisURL(text) } catch { throw CLIFailure("Redis URL \(text): \(error)") }
        } else if Self.hasRedisSinks(config) {
            do {
                let server = try await runOnDedicatedThread("local-redis") { try LocalRedisServer() }  // blocks until PING answers
                localRedis = server
                redisURL = server.url
                printLine("local redis-server: \(server.url)")
            } catch {
                throw CLIFailure("the pipelines write to Redis but no Redis URL is configured, and a local one could not start: \(error)")
            }
        }

        // MySQL/MariaDB: configured, or a private mariadbd when sql sinks need one.
        var localMariaDB: LocalMariaDBServer?
        if let sqlUrl { config.sqlURL = sqlUrl }
        if let text = config.sqlURL {
            do { printLine("sql: \(try MariaDBURL(text))") } catch { throw CLIFailure("\(error.message)") }
        } else if !config.sqlSinks.isEmpty {
            do {
                let server = try await runOnDedicatedThread("local-mariadb") { try LocalMariaDBServer(database: "streamengine") }
                localMariaDB = server
                config.sqlURL = server.url.urlString
                printLine("local mariadbd: \(server.url) (data in \(server.directory))")
            } catch {
                throw CLIFailure("the pipelines write to SQL but no SQL URL is configured, and a local mariadbd could not start: \(error)")
            }
        }

        // The HTTP service (API, metrics, dashboard) bootstraps metrics before the runtime's counters exist.
        let httpAddress = try httpOptions.address(config: config)
        if httpAddress != nil { EngineMetrics.bootstrap() }
        let runtime = StreamRuntime(
            config: config, registry: registry, kafka: connection, redisURL: redisURL,
            options: RuntimeOptions(stateDir: stateDir, stopAtEnd: stopAtEnd, instanceId: instanceId, standbyReplicas: standbyReplicas), logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup)]
        let http = try httpAddress.map { address in
            try HTTPServiceSetup(
                config: runtime.config, address: address, advertisedHost: httpOptions.advertisedHost, queries: runtime.queries,
                admin: cluster ?? (try? KafkaAdmin(config: config.kafka, logger: logger, timeout: .seconds(5))), redisURL: redisURL, logger: logger)
        }
        if let http { services.append(.init(service: http.service)) }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        let started = ContinuousClock.now
        let forceExit = SecondSignalExit(signals: [SIGTERM, SIGINT])
        defer { forceExit.cancel() }
        let outcome: Result<Void, any Error>
        do {
            try await group.run()
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        await http?.close()
        // Private servers go away whatever the outcome (after a crash their watchdogs see to it).
        if let localRedis { _ = try? await runOnDedicatedThread("local-redis-stop") { localRedis.stop() } }
        if let localMariaDB { _ = try? await runOnDedicatedThread("local-mariadb-stop") { localMariaDB.close() } }
        if case .failure(let error) = outcome { throw CLIFailure(Self.oneLine(error)) }
        let seconds = (ContinuousClock.now - started).seconds
        let s = runtime.stats
        printLine("stream-engine: \(s.processed) records processed, \(s.deadLettered) dead-lettered, \(s.commits) commits in \(String(format: "%.1f", seconds)) s")
        withExtendedLifetime(cluster) {}
    }

    static func hasRedisSinks(_ config: StreamConfig) -> Bool {
        config.pipelines.contains { $0.steps.contains { if case .redis = $0 { return true } else { return false } } }
    }

    /// An error as one line.
    static func oneLine(_ error: any Error) -> String {
        "\(error)".split(whereSeparator: \.isNewline).joined(separator: "; ")
    }
}

/// Exits the process at once (code 130) when one of `signals` arrives a second
/// time, for a graceful shutdown that does not finish (e.g. a sink retrying an
/// error that never clears). The first signal is left to the ServiceGroup.
final class SecondSignalExit {
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32]) {
        let count = Mutex(0)
        sources = signals.map { sig in
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                let n = count.withLock { n in
                    n += 1
                    return n
                }
                if n == 1 {
                    printError("stream-engine: stopping gracefully (finishing in-flight records, committing, writing snapshots); signal again to exit at once")
                } else {
                    printError("stream-engine: second signal: exiting at once without committing (the next run processes the uncommitted records again)")
                    exit(130)
                }
            }
            source.resume()
            return source
        }
    }

    func cancel() { for s in sources { s.cancel() } }
}
