import ArgumentParser
import CLISupport
import Foundation
import KafkaClient
import Logging
import StreamEngine

/// `stream-engine topics`: every topic a configuration uses, with the
/// partition count and configs it needs; `--create` creates the missing ones.
struct TopicsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Print (and with --create create) every topic the pipelines use: inputs, changelogs, de-duplication changelogs, repartition, output, global-table and dead-letter topics.",
        discussion: """
            Partition counts come from the input topics on the cluster: engine-owned topics copy their source's count. \
            Without --create nothing is changed (for clusters where the engine may not create topics: create them as printed). \
            With --create the missing ones are created as `stream-engine run` would (on a `stream-engine dev-broker` through its \
            topic requests), and an existing topic with a wrong partition count is an error. One line per topic: \
            NAME ROLE PARTITIONS STATUS [CONFIGS].
            """)

    @Option(help: "The configuration file.")
    var config = "topologies.yaml"

    @Option(help: "Kafka bootstrap servers (overrides kafka bootstrap.servers of the file).")
    var bootstrapServers: String?

    @Flag(help: "Create the missing topics.")
    var create = false

    @Option(name: .customLong("kafka"), help: ArgumentHelp("A librdkafka setting, passed through (repeatable).", valueName: "KEY=VALUE"))
    var kafkaSettings: [String] = []

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap(defaultLevel: .warning)
        var config = try loadConfig(self.config, registry: makeRegistry())
        config.kafka.merge(try parseKeyValues(kafkaSettings, option: "--kafka")) { $1 }
        if let bootstrapServers { config.kafka["bootstrap.servers"] = bootstrapServers }
        guard !config.usesEmbeddedCluster else {
            throw CLIFailure("topics needs a cluster: --bootstrap-servers or kafka bootstrap.servers (the embedded cluster lives only inside `run`)", exitCode: ExitStatus.usage)
        }
        let admin: any TopicAdministrator
        do {
            let probe = try KafkaAdmin(config: config.kafka, logger: logger, timeout: .seconds(10))
            let id = try await probe.clusterId()
            admin = KafkaAdmin.isMockCluster(id: id) ? try MockClusterTopicRequester(config: config.kafka, logger: logger) : probe
        } catch {
            throw CLIFailure("cannot reach Kafka at \(config.kafka["bootstrap.servers"] ?? ""): \(error)", exitCode: ExitStatus.usage)
        }
        if create {
            do {
                try await TopicSetup(config: config, admin: admin, embedded: false, logger: logger).ensureTopics()
            } catch {
                throw CLIFailure(RunCommand.oneLine(error))
            }
        }
        let existing: [String: Int]
        do { existing = try await admin.topicPartitionCounts() } catch { throw CLIFailure("cannot read the cluster's metadata: \(error)", exitCode: ExitStatus.usage) }
        var wrong = 0
        for t in TopicSetup.plannedTopics(config: config, inputCounts: existing) {
            let want = t.partitions.map(String.init) ?? "?"
            let status: String
            switch (existing[t.name], t.partitions) {
            case (nil, _): status = t.role == .input ? "missing (create it: the engine reads it)" : "missing"
            case (let have?, let need?) where have != need:
                status = "exists with \(have) partitions, expected \(need)\(t.partitionsFrom.map { " (as \($0))" } ?? "")"
                if t.strict { wrong += 1 }
            default: status = "exists"
            }
            let cfg = t.configs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            printLine([t.name, t.role.rawValue.replacingOccurrences(of: " ", with: "-"), want, status, cfg].filter { !$0.isEmpty }.joined(separator: "\t"))
        }
        if wrong > 0 { throw CLIFailure("\(wrong) engine-owned topics have a wrong partition count: delete them and let `run` (or `topics --create`) recreate them, or use a new application.id") }
    }
}
