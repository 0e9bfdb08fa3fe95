import ArgumentParser
import CLISupport
import Foundation

/// `stream-engine`: validate, describe and run `topologies.yaml`, run a
/// development Kafka cluster, and inspect state stores.
@main
struct StreamEngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream-engine",
        abstract: "A Kafka-Streams-like stream-processing engine: topologies from YAML, state in zstd changelog-backed stores, results in Kafka and Redis.",
        discussion: """
            Exit codes: 0 success; 1 failure (invalid configuration, engine error, `state get` of a missing key); \
            2 usage or I/O error (bad options, unknown store, unreadable or corrupt file, unreachable Kafka).
            """,
        subcommands: [
            ValidateCommand.self,
            DescribeCommand.self,
            RunCommand.self,
            TopicsCommand.self,
            ServeCommand.self,
            DevBrokerCommand.self,
            StateCommand.self,
            // MARK: Commands owned by others — add them here:
            // DemoCommand.self, GenerateCommand.self,
            GenerateCommand.self, DemoCommand.self,
        ])

    /// Parses and runs a command with the tool's exit codes (see ``CLISupport``).
    static func main() async {
        await runWithExitCodes(tool: "stream-engine")
    }
}
