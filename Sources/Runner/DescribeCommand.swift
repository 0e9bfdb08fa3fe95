import CLISupport
import ArgumentParser
import StreamEngine

/// `stream-engine describe [FILE] [--format text|mermaid]`: the compiled topology.
struct DescribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract: "Print the compiled topology: sources, steps, state stores with their changelog topics, repartition topics, sinks.",
        discussion: "`--format mermaid` prints a Mermaid flowchart (paste it into a ```mermaid block).")

    /// Output formats.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, mermaid
    }

    @Argument(help: "The configuration file.")
    var file = "topologies.yaml"

    @Option(help: "text or mermaid.")
    var format: Format = .text

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        _ = logging.bootstrap(defaultLevel: .warning)
        let registry = makeRegistry()
        let config = try loadConfig(file, registry: registry)
        switch format {
        case .text: print(TopologyDescriber.text(config, registry: registry), terminator: "")
        case .mermaid: print(TopologyDescriber.mermaid(config), terminator: "")
        }
    }
}
