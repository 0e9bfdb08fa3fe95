import ArgumentParser
import CLISupport
import StreamEngine

/// What `run` and `serve` share: the configuration file and how to reach Kafka.
struct JobConfigOptions: ParsableArguments {
    @Option(help: "The configuration file.")
    var config = "topologies.yaml"

    @Option(help: "Kafka bootstrap servers (overrides kafka bootstrap.servers of the file).")
    var bootstrapServers: String?

    @Option(name: .customLong("kafka"), help: ArgumentHelp("A librdkafka setting, passed through (repeatable).", valueName: "KEY=VALUE"))
    var kafkaSettings: [String] = []

    /// The configuration file with `--kafka` settings and `--bootstrap-servers` over the file's `kafka:`.
    func load(registry: OperatorRegistry) throws -> StreamConfig {
        var loaded = try loadConfig(config, registry: registry)
        loaded.kafka.merge(try parseKeyValues(kafkaSettings, option: "--kafka")) { $1 }
        if let bootstrapServers { loaded.kafka["bootstrap.servers"] = bootstrapServers }
        return loaded
    }
}
