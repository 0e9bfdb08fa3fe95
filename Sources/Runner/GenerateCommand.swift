import CLISupport
import ArgumentParser
import Foundation
import KafkaClient
import Logging
import StreamEngine
import Topologies

/// `stream-engine generate`: produces a seeded, realistic mix of shop events to
/// the four input topics of `topologies.yaml`.
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Produce seeded shop events to product_prices, purchases, user_events and logins.",
        discussion: """
            The mix: Zipf-skewed product popularity; price updates from ~300 platforms, some out of order and some \
            stale; members and guests browsing in sessions with gaps; guests who log in after browsing (some as \
            members with a history); purchases; about 0.5% malformed records. The same --seed gives the same records. \
            --spike makes the middle fifth of the records a promotion: 5× denser in event time, twice the purchases, \
            and 5× --rate. Missing topics are created with --partitions partitions where the cluster allows it \
            (a `stream-engine dev-broker` needs them as --topic options: product_prices:4 and so on).
            """)

    @Option(help: "Number of records to produce.")
    var events: Int

    @Option(help: "Records per second (default: as fast as possible).")
    var rate: Double?

    @Option(help: "Random seed.")
    var seed: UInt64 = 42

    @Flag(help: "A promotion spike in the middle fifth of the records.")
    var spike = false

    @Option(help: "Kafka bootstrap servers.")
    var bootstrapServers = "localhost:9092"

    @Option(help: "Partitions of the topics this command creates.")
    var partitions = 4

    @Option(name: .customLong("kafka"), help: ArgumentHelp("A librdkafka setting, passed through (repeatable).", valueName: "KEY=VALUE"))
    var kafkaSettings: [String] = []

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard events >= 1 else { throw ValidationError("--events must be at least 1") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be a positive number of records per second") }
        guard partitions >= 1 else { throw ValidationError("--partitions must be at least 1") }
    }

    func run() async throws {
        let logger = logging.bootstrap(defaultLevel: .warning)
        var kafka = try parseKeyValues(kafkaSettings, option: "--kafka")
        kafka["bootstrap.servers"] = bootstrapServers
        let admin: KafkaAdmin
        let producer: KafkaProducer
        do {
            admin = try KafkaAdmin(config: kafka, logger: logger, timeout: .seconds(10))
            producer = try KafkaProducer(config: kafka, logger: logger)
        } catch {
            throw CLIFailure("cannot create a Kafka client for \(bootstrapServers): \(error)", exitCode: ExitStatus.usage)
        }
        for topic in ShopEvents.topics {
            do {
                if try await admin.partitionCount(topic: topic) == nil {
                    try await admin.createTopics([NewTopic(name: topic, partitions: partitions)])
                    printError("created topic \(topic) with \(partitions) partitions")
                }
            } catch {
                printError("warning: could not check or create topic \(topic) (\(error)); producing anyway")
            }
        }

        let options = GeneratorOptions(events: events, seed: seed, spike: spike)
        let counts = TopicCounts()
        let start = ContinuousClock.now
        let records = EventGenerator(options).lazy.map { r -> GeneratedRecord in
            counts.add(r)
            return r
        }
        let total = events
        do {
            try await EventGenerator.produce(records, with: producer, rate: rate) { sent in
                printError("  \(sent)/\(total) records sent")
            }
        } catch {
            throw CLIFailure("producing to \(bootstrapServers) failed: \(error)")
        }
        await producer.close()
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        let perTopic = ShopEvents.topics.map { "\($0) \(counts.perTopic[$0, default: 0])" }.joined(separator: ", ")
        printLine("produced \(events) records (seed \(seed)\(spike ? ", spike" : "")) in \(String(format: "%.1f", seconds)) s: "
            + "\(perTopic); \(counts.malformed) malformed on purpose")
    }
}

/// Records produced per topic (the generator runs on one task: no locking needed).
private final class TopicCounts {
    var perTopic: [String: Int] = [:]
    var malformed = 0

    func add(_ r: GeneratedRecord) {
        perTopic[r.topic, default: 0] += 1
        if r.malformed { malformed += 1 }
    }
}
