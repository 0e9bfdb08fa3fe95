import CLISupport
import ArgumentParser
import StreamEngine

/// `stream-engine validate [FILE]`: loads the file with every registered
/// operator and reports each problem as `file:line:col: error: …`.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a topologies file: every problem with file, line and column.",
        discussion: """
            Prints each problem as `file:line:column: error: message` on stderr and exits 1, \
            or prints `FILE: OK (N pipelines, M stores)` and exits 0.
            """)

    @Argument(help: "The configuration file.")
    var file = "topologies.yaml"

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        _ = logging.bootstrap(defaultLevel: .warning)
        let config = try loadConfig(file, registry: makeRegistry())
        let pipelines = config.pipelines.count
        let stores = config.storeNames.count
        printLine("\(file): OK (\(pipelines) pipeline\(pipelines == 1 ? "" : "s"), \(stores) store\(stores == 1 ? "" : "s"))")
    }
}
