import CLISupport
import ArgumentParser
import Foundation
import Logging
import MariaDBClient
import RedisClient
import StreamEngine
import Topologies

/// `stream-engine demo`: the e-commerce pipelines end to end on this machine.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Generate shop events, run every pipeline of topologies.yaml on embedded Kafka and Redis, and summarise the results.",
        discussion: """
            Starts an embedded 3-broker Kafka cluster and a redis-server on a free port (or uses --redis-url: the \
            demo then writes its keys there under a fresh application id), generates --events records, runs every \
            pipeline to the end of its input, and prints what Redis holds: the cheapest platforms of popular \
            products, the top categories, one user's stats and recommendations, one guest's recently viewed list \
            before and after logging in, the throughput and the dead-letter count; then the rows the sql sinks wrote \
            to MariaDB (a private mariadbd on a free port, or --sql-url). Progress goes to stderr, the \
            summary to stdout.
            """)

    @Option(help: "Number of generated records.")
    var events = 50_000

    @Option(help: "Random seed of the generator.")
    var seed: UInt64 = 42

    @Flag(help: "Generate a promotion spike in the middle of the records.")
    var spike = false

    @Option(help: "The configuration file.")
    var config = "topologies.yaml"

    @Option(help: "Use this Redis (redis://[user:password@]host:port/db) instead of starting one.")
    var redisUrl: String?

    @Option(help: ArgumentHelp("Use this MySQL/MariaDB (mysql://user:password@host:port/database) for the sql sinks instead of starting a private mariadbd.", valueName: "url"))
    var sqlUrl: String?

    @Option(help: "Directory for store snapshots (default: a temporary directory, removed at the end).")
    var stateDir: String?

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard events >= 100 else { throw ValidationError("--events must be at least 100") }
    }

    func run() async throws {
        let logger = logging.bootstrap(defaultLevel: .warning)
        var redisURL: RedisURL?
        if let redisUrl {
            do { redisURL = try RedisURL(redisUrl) } catch { throw CLIFailure("Redis URL \(redisUrl): \(error)", exitCode: ExitStatus.usage) }
        }
        var sqlURL: MariaDBURL?
        if let sqlUrl {
            do { sqlURL = try MariaDBURL(sqlUrl) } catch { throw CLIFailure(error.message, exitCode: ExitStatus.usage) }
        }
        _ = try loadConfig(config, registry: makeRegistry())  // file:line:column diagnostics before anything starts
        let options = DemoOptions(events: events, seed: seed, spike: spike, configPath: config, redisURL: redisURL, stateDir: stateDir, sqlURL: sqlURL)
        let summary = try await ShopDemo.run(options, logger: logger) { printError("demo: \($0)") }
        printLine(summary)
    }
}
