import CLISupport
import ArgumentParser
import Foundation
import KafkaClient
import Logging
import ServiceLifecycle
import StreamEngine

/// `stream-engine dev-broker`: librdkafka's mock cluster as a standalone process.
struct DevBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-broker",
        abstract: "Run an embedded Kafka cluster (librdkafka's mock brokers on loopback) until SIGTERM or SIGINT.",
        discussion: """
            Prints the bootstrap list on stdout (and writes it to --bootstrap-file, once the topics exist), \
            then serves until SIGTERM/SIGINT and exits 0. Other processes connect to it: kcat -b <bootstrap> -L, \
            `stream-engine run --bootstrap-servers <bootstrap>`, `stream-engine state … --from-changelog --bootstrap-servers <bootstrap>`.

            Create the input topics with --topic. The mock cluster (librdkafka \(librdkafkaVersion)) answers no CreateTopics \
            request, so this process serves topic requests instead: `stream-engine run` and `stream-engine topics --create` \
            produce one record per topic they need (changelogs, repartition, dead-letter, output and global-table topics) to \
            \(MockTopicRequests.topic), and the dev-broker creates each topic with its partition count. Topics created here \
            keep all their data (the mock's 5 MiB/partition retention is lifted); the mock does not compact.

            Consumer groups: a JoinGroup round ends as soon as every member has rejoined, after \
            --group-initial-rebalance-delay-ms for an empty group's first round (0, as in Kafka's development \
            server.properties), and sessions are checked every 5 ms (the mock as shipped waits 3 s on a first join, \
            session.timeout.ms − 1 s on every later round, and checks sessions once a second). `stream-engine run` sets \
            session.timeout.ms=3000 and heartbeat.interval.ms=250 on a mock cluster, so a killed instance's partitions \
            move about 3 s after the kill (about the session timeout).
            """)

    @Option(help: "Number of brokers.")
    var brokers = 3

    @Option(name: .customLong("topic"), help: ArgumentHelp("A topic to create (repeatable).", valueName: "NAME:PARTITIONS"))
    var topics: [String] = []

    @Option(help: "A file to write the bootstrap list to (replaced atomically, after the topics exist).")
    var bootstrapFile: String?

    @Option(help: ArgumentHelp(
        "How long an empty consumer group's first JoinGroup round waits for more members (Kafka's group.initial.rebalance.delay.ms), 0 to 3000.",
        valueName: "MS"))
    var groupInitialRebalanceDelayMs = 0

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard brokers >= 1 else { throw ValidationError("--brokers must be at least 1") }
        guard (0...3000).contains(groupInitialRebalanceDelayMs) else {
            throw ValidationError("--group-initial-rebalance-delay-ms must be 0 to 3000 (the mock's own coordinator ends a first round after 3 s anyway)")
        }
        _ = try parsedTopics()
    }

    /// `--topic` values as (name, partitions).
    func parsedTopics() throws -> [(name: String, partitions: Int)] {
        try topics.map { spec in
            guard let colon = spec.lastIndex(of: ":"), colon != spec.startIndex,
                  let n = Int(spec[spec.index(after: colon)...]), n >= 1 else {
                throw ValidationError("--topic \(spec): expected NAME:PARTITIONS with PARTITIONS ≥ 1, e.g. --topic orders:4")
            }
            return (String(spec[..<colon]), n)
        }
    }

    func run() async throws {
        let logger = logging.bootstrap(defaultLevel: .info)
        let cluster: EmbeddedKafkaCluster
        do {
            cluster = try EmbeddedKafkaCluster(brokers: brokers, groupInitialRebalanceDelayMs: groupInitialRebalanceDelayMs, logger: logger)
            for t in try parsedTopics() {
                try cluster.createTopic(t.name, partitions: t.partitions, replicationFactor: min(3, brokers))
                logger.info("created topic \(t.name) with \(t.partitions) partitions")
            }
        } catch let error as KafkaError {
            throw CLIFailure("dev-broker: \(error)")
        }
        let bootstrapFile = self.bootstrapFile
        let service = DevBrokerService(cluster: cluster, logger: logger) {
            // Announced from inside the service group, once SIGTERM/SIGINT are trapped: whoever
            // reads the bootstrap list may signal this process right away.
            printLine(cluster.bootstrapServers)
            if let bootstrapFile { try Self.writeAtomically(cluster.bootstrapServers + "\n", to: bootstrapFile) }
            logger.info("embedded Kafka cluster (\(cluster.brokerCount) brokers, librdkafka \(librdkafkaVersion)) at \(cluster.bootstrapServers); stop with SIGTERM or SIGINT")
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        logger.info("dev-broker stopped")
    }

    /// Writes a file through a temporary file and a rename, so a reader never sees it half-written.
    static func writeAtomically(_ text: String, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8)), rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: tmp)
            throw CLIFailure("cannot write the bootstrap file \(path): \(reason)", exitCode: ExitStatus.usage)
        }
    }
}

/// Keeps the embedded cluster serving until graceful shutdown.
struct DevBrokerService: Service {
    let cluster: EmbeddedKafkaCluster
    let logger: Logger
    /// Called once the service runs (signals are trapped by then).
    let ready: @Sendable () throws -> Void

    func run() async throws {
        // The request topic exists before anyone learns the bootstrap list.
        try cluster.createTopic(MockTopicRequests.topic, partitions: 1)
        try ready()
        try await cancelWhenGracefulShutdown { [cluster, logger] in
            try await cluster.serveTopicRequests(logger: logger)
        }
        logger.info("shutdown requested: stopping the brokers at \(cluster.bootstrapServers)")
    }
}
