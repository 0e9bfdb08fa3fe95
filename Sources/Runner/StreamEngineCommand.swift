import ArgumentParser
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
            ServeCommand.self,
            BenchHTTPCommand.self,
            DevBrokerCommand.self,
            StateCommand.self,
            // MARK: Commands owned by others — add them here:
            // DemoCommand.self, GenerateCommand.self, BenchCommand.self,
            GenerateCommand.self, DemoCommand.self, BenchCommand.self,
        ])

    /// Parses and runs a command like ArgumentParser's default entry point, with
    /// the tool's exit codes: usage errors exit 2, and a ``CLIFailure`` prints
    /// `stream-engine: <reason>` on stderr and exits with its code.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CLIFailure {
            printError("stream-engine: \(failure.message)")
            Foundation.exit(failure.exitCode)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                // Parse errors: ArgumentParser's message and usage, but the conventional exit code 2.
                printError(fullMessage(for: error))
                Foundation.exit(ExitStatus.usage)
            }
            if code == .success || error is ExitCode || error is CleanExit {
                exit(withError: error)
            }
            printError("stream-engine: \(error)")
            Foundation.exit(ExitStatus.failure)
        }
    }
}
