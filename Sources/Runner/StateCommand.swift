import ArgumentParser
import CLISupport
import Foundation
import Logging
import StreamEngine
import StreamInspection
import ThreadExecutors

/// `stream-engine state …`: read-only inspection of state stores, from the
/// local snapshots or from their changelog topics.
struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Look into state stores, from local snapshots or straight from their changelog topics (read-only).",
        discussion: """
            Stores are read from the snapshots the job wrote under --state-dir (default `state`, as for `run`), \
            or with --from-changelog by replaying each store's changelog topic <application.id>-<store>-changelog \
            from Kafka, which works on a machine that never ran the job.

            Kafka is the file's kafka bootstrap.servers or --bootstrap-servers. A job run on the embedded cluster \
            (no bootstrap.servers) keeps its Kafka inside the `run` process, gone when it exits: for --from-changelog, \
            `state list` end offsets and `state diff`, run the job against a reachable cluster (for example \
            `stream-engine dev-broker`) and pass that cluster here.

            Nothing is ever written: not the snapshots, not the changelogs, not a consumer-group offset, not Redis. \
            It is safe while the job runs (snapshots are replaced by rename, never rewritten in place).

            Output: an aligned table (values as compact JSON; shortened to the terminal's width on a terminal), \
            or --format json, one JSON document with stable field names. Exit codes: 0 found; 1 key not found \
            (`get`) or differences found (`diff`); 2 usage or I/O error (unknown store, missing or corrupt snapshot, \
            unreachable Kafka).
            """,
        subcommands: [
            StateListCommand.self, StateGetCommand.self, StateScanCommand.self, StateCountCommand.self,
            StateDumpCommand.self, StateDiffCommand.self,
        ])
}

/// Output formats of the state commands.
enum StateOutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

/// Options shared by every `state` command.
struct StateOptions: ParsableArguments {
    @Option(help: "The configuration file.")
    var config = "topologies.yaml"

    @Option(help: "The job's state directory (its `run --state-dir`).")
    var stateDir = "state"

    @Option(help: "Kafka bootstrap servers holding the changelogs (overrides kafka bootstrap.servers of the file).")
    var bootstrapServers: String?

    @Option(name: .customLong("kafka"), help: ArgumentHelp("A librdkafka setting, passed through (repeatable).", valueName: "KEY=VALUE"))
    var kafkaSettings: [String] = []

    @Option(help: "table or json.")
    var format: StateOutputFormat = .table

    @OptionGroup var logging: LoggingOptions

    /// Loads the configuration (errors exit 2) and makes an inspector.
    func makeInspector() throws -> StateInspector {
        let logger = logging.bootstrap(defaultLevel: .warning)
        let config = try loadConfig(self.config, registry: makeRegistry(), exitCode: ExitStatus.usage)
        var kafka = config.kafka.merging(try parseKeyValues(kafkaSettings, option: "--kafka")) { $1 }
        if let bootstrapServers { kafka["bootstrap.servers"] = bootstrapServers }
        return StateInspector(config: config, stateDir: stateDir, kafkaConfig: kafka, logger: logger)
    }
}

/// `--from-changelog` and the store argument, for the commands that read one store's contents.
struct StoreSourceOptions: ParsableArguments {
    @Flag(help: "Replay the store's changelog topic from Kafka instead of reading the local snapshots (needs a reachable cluster: see `state --help`).")
    var fromChangelog = false
}

/// Helpers shared by the state subcommands.
enum StateCLI {
    /// Runs an inspection, turning ``InspectionError`` into exit code 2.
    static func inspecting<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as InspectionError {
            throw CLIFailure(error.message, exitCode: ExitStatus.usage)
        }
    }

    /// Reads a store from its snapshots or its changelog; prints notes on stderr.
    static func contents(_ inspector: StateInspector, store name: String, partition: Int32? = nil, fromChangelog: Bool) async throws -> StoreContents {
        try await inspecting {
            let store = try inspector.store(named: name)
            let contents: StoreContents
            if fromChangelog {
                let progress = ProgressLine()
                contents = try await inspector.readChangelog(of: store, partition: partition, progress: progress?.report)
                progress?.finish()
            } else {
                contents = try await runOnDedicatedThread("snapshot-read") { try inspector.readSnapshots(of: store, partition: partition) }
            }
            for note in contents.notes { printError("note: \(note)") }
            return contents
        }
    }

    /// Prints a JSON document on one line.
    static func printJSON(_ value: JSONValue) {
        printLine(value.serializedString())
    }

    /// A value as compact JSON for a table cell.
    static func cell(_ value: JSONValue?) -> String {
        value?.serializedString() ?? "-"
    }

    /// An expiry as ISO-8601, or empty.
    static func expiry(_ millis: Int64?) -> String {
        millis.map(EventTime.formatISO8601) ?? ""
    }

    /// Prints items as a table: KEY, PARTITION, VALUE (and EXPIRES AT when any key has a TTL).
    static func printItems(_ items: [StoreItem]) {
        let withExpiry = items.contains { $0.expiresAt != nil }
        var columns = [TextTable.Column("KEY"), TextTable.Column("PARTITION", rightAligned: true)]
        if withExpiry { columns.append(TextTable.Column("EXPIRES AT")) }
        columns.append(TextTable.Column("VALUE", shrinkable: true))
        var table = TextTable(columns)
        for item in items {
            var row = [item.key, String(item.partition)]
            if withExpiry { row.append(expiry(item.expiresAt)) }
            row.append(cell(item.value))
            table.add(row)
        }
        printLine(table.render(maxWidth: terminalWidth()))
    }

    /// `partition 1`, `partitions 0-3`, `partitions 0,2`, `no partitions`.
    static func partitionList(_ parts: [Int32]) -> String {
        guard let first = parts.first, let last = parts.last else { return "no partitions" }
        if parts.count == 1 { return "partition \(first)" }
        if parts.count > 2 && last - first == Int32(parts.count - 1) { return "partitions \(first)-\(last)" }
        return "partitions " + parts.map(String.init).joined(separator: ",")
    }

    /// `local snapshots, partitions 0-3` / `changelog <topic>, partitions 0-3`.
    static func sourceDescription(_ contents: StoreContents) -> String {
        let list = partitionList(contents.partitions.map(\.partition))
        switch contents.source {
        case .snapshot: return "local snapshots, \(list)"
        case .changelog: return "changelog \(contents.store.changelogTopic), \(list)"
        }
    }
}

/// A progress line on stderr while a changelog is replayed, only when stderr is a terminal.
final class ProgressLine: Sendable {
    /// nil when stderr is not a terminal.
    init?() {
        guard isTerminal(STDERR_FILENO) else { return nil }
    }

    var report: @Sendable (ChangelogProgress) -> Void {
        { p in
            let pct = p.total > 0 ? Int(Double(p.read) * 100 / Double(p.total)) : 100
            let width = 30
            let filled = p.total > 0 ? Int(Double(width) * Double(p.read) / Double(p.total)) : width
            let bar = String(repeating: "#", count: min(width, filled)) + String(repeating: ".", count: max(0, width - filled))
            FileHandle.standardError.write(Data("\r\u{1B}[Kreplaying \(p.topic) [\(bar)] \(p.read)/\(p.total) records (\(pct)%)".utf8))
        }
    }

    func finish() {
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

// MARK: - list

struct StateListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Every store with its changelog topic and, per partition, the local snapshot's keys, raw and compressed bytes, ratio, the changelog offset it covers, the changelog's end offset and the lag.",
        discussion: "End offsets and lag are shown when Kafka is configured and answers, else `-`. Exit 2 when a snapshot file is unreadable (it is listed as CORRUPT with a warning).")

    @Flag(help: "Also list the engine's internal stores (the de-duplication store of each repartitioned pipeline).")
    var all = false

    @OptionGroup var options: StateOptions

    func run() async throws {
        let inspector = try options.makeInspector()
        var listing = await inspector.list()
        if !all { listing.stores.removeAll { $0.store.isInternal } }
        if options.format == .json {
            StateCLI.printJSON(listing.jsonValue)
            if listing.stores.contains(where: { $0.partitions.contains { $0.snapshotError != nil } }) {
                throw ExitCode(ExitStatus.usage)
            }
            return
        }
        if let error = listing.kafkaError {
            printError("note: Kafka at \(listing.bootstrapServers ?? "?") did not answer (\(error)); end offsets and lag are not shown")
        } else if listing.bootstrapServers == nil {
            printError("note: no Kafka configured (embedded cluster); end offsets and lag need --bootstrap-servers")
        }
        printLine("application \(listing.applicationId), state directory \(listing.stateDir)")
        for s in listing.stores {
            var header = "\(s.store.name)\(s.store.isInternal ? " (internal)" : "") — sub-topology \(s.store.subTopology), changelog \(s.store.changelogTopic)"
            if let n = s.changelogPartitions {
                header += ", \(n) partition\(n == 1 ? "" : "s")"
            } else if s.changelogExists == false {
                header += " (topic does not exist)"
            }
            printLine("")
            printLine(header)
            if s.partitions.isEmpty {
                printLine("  no snapshots in \(inspector.snapshotDirectory(of: s.store))")
                continue
            }
            var table = TextTable([
                .init("PARTITION", rightAligned: true), .init("KEYS", rightAligned: true), .init("RAW BYTES", rightAligned: true),
                .init("COMPRESSED", rightAligned: true), .init("RATIO", rightAligned: true), .init("SNAPSHOT OFFSET", rightAligned: true),
                .init("END OFFSET", rightAligned: true), .init("LAG", rightAligned: true),
            ])
            var problems: [String] = []
            for p in s.partitions {
                let end = p.changelogEndOffset.map(String.init) ?? "-"
                if let snap = p.snapshot {
                    table.add([
                        String(p.partition), String(snap.keys), String(snap.rawBytes), String(snap.compressedBytes),
                        snap.ratio.map { String(format: "%.2f", $0) } ?? "-", String(snap.changelogOffset), end, p.lag.map(String.init) ?? "-",
                    ])
                } else {
                    let what = p.snapshotError == nil ? "none" : "CORRUPT"
                    table.add([String(p.partition), what, "-", "-", "-", "-", end, "-"])
                    if let e = p.snapshotError { problems.append(e) }
                }
            }
            printLine(table.render(indent: "  "))
            for problem in problems { printError("warning: \(problem)") }
        }
        let unreadable = listing.stores.flatMap(\.partitions).filter { $0.snapshotError != nil }.count
        if unreadable > 0 {
            throw CLIFailure("\(unreadable) snapshot\(unreadable == 1 ? " is" : "s are") unreadable (see the warnings above)", exitCode: ExitStatus.usage)
        }
    }
}

// MARK: - get

struct StateGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "The value of one key (exit 1 if the key does not exist).")

    @Argument(help: "The store.") var store: String
    @Argument(help: "The key.") var key: String
    @OptionGroup var source: StoreSourceOptions
    @OptionGroup var options: StateOptions

    func run() async throws {
        let inspector = try options.makeInspector()
        let contents = try await StateCLI.contents(inspector, store: store, fromChangelog: source.fromChangelog)
        let matches = contents.lookup(key)
        if matches.count > 1 {
            printError("note: key \(key) is present in partitions \(matches.map { String($0.partition) }.joined(separator: ", ")) (the store was repartitioned?)")
        }
        if options.format == .json {
            StateCLI.printJSON(contents.getDocument(key: key))
        } else if !matches.isEmpty {
            StateCLI.printItems(matches)
        }
        if matches.isEmpty {
            throw CLIFailure("key '\(key)' not found in store \(store) (\(StateCLI.sourceDescription(contents)))", exitCode: ExitStatus.failure)
        }
    }
}

// MARK: - scan

struct StateScanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Keys in ascending order, filtered by prefix and/or range.",
        discussion: "--from and --to are both inclusive. Keys are compared as strings.")

    @Argument(help: "The store.") var store: String
    @Option(help: "Only keys starting with this prefix.") var prefix: String?
    @Option(help: "Only keys ≥ this key.") var from: String?
    @Option(help: "Only keys ≤ this key.") var to: String?
    @Option(help: "At most this many keys.") var limit: Int?
    @OptionGroup var source: StoreSourceOptions
    @OptionGroup var options: StateOptions

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more") }
        if let from, let to, from > to { throw ValidationError("--from \(from) is after --to \(to): nothing can match") }
    }

    func run() async throws {
        let inspector = try options.makeInspector()
        let contents = try await StateCLI.contents(inspector, store: store, fromChangelog: source.fromChangelog)
        let (items, truncated) = contents.scan(prefix: prefix, from: from, to: to, limit: limit)
        if options.format == .json {
            StateCLI.printJSON(contents.entriesDocument(items, truncated: truncated))
            return
        }
        StateCLI.printItems(items)
        printLine("(\(items.count) key\(items.count == 1 ? "" : "s")\(truncated ? ", more match than --limit \(limit!)" : ""); \(StateCLI.sourceDescription(contents)))")
    }
}

// MARK: - count

struct StateCountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "count",
        abstract: "Number of keys, per partition and in total.")

    @Argument(help: "The store.") var store: String
    @OptionGroup var source: StoreSourceOptions
    @OptionGroup var options: StateOptions

    func run() async throws {
        let inspector = try options.makeInspector()
        let contents = try await StateCLI.contents(inspector, store: store, fromChangelog: source.fromChangelog)
        if options.format == .json {
            StateCLI.printJSON(contents.countDocument)
            return
        }
        var table = TextTable([.init("PARTITION", rightAligned: true), .init("KEYS", rightAligned: true)])
        for p in contents.partitions { table.add([String(p.partition), String(p.entries.count)]) }
        table.add(["total", String(contents.count)])
        printLine(table.render())
    }
}

// MARK: - dump

struct StateDumpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Every key and value of a store, or of one partition, in key order.")

    @Argument(help: "The store.") var store: String
    @Option(help: "Only this partition.") var partition: Int32?
    @OptionGroup var source: StoreSourceOptions
    @OptionGroup var options: StateOptions

    func validate() throws {
        if let partition, partition < 0 { throw ValidationError("--partition must be 0 or more") }
    }

    func run() async throws {
        let inspector = try options.makeInspector()
        let contents = try await StateCLI.contents(inspector, store: store, partition: partition, fromChangelog: source.fromChangelog)
        let items = contents.items(partition: partition)
        if options.format == .json {
            StateCLI.printJSON(contents.entriesDocument(items, truncated: false))
            return
        }
        StateCLI.printItems(items)
        printLine("(\(items.count) key\(items.count == 1 ? "" : "s"); \(StateCLI.sourceDescription(contents)))")
    }
}

// MARK: - diff

struct StateDiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Keys whose local snapshot value differs from the changelog's latest value (a health check after a crash).",
        discussion: """
            Compares every partition that has a local snapshot with a replay of its changelog. A difference whose \
            changelog record was written after the snapshot (AFTER SNAPSHOT = yes) is the snapshot's lag, which a \
            restore replays; one written before it means the snapshot and the changelog disagree. Exit 0 when \
            they agree, 1 when keys differ, 2 on errors.
            """)

    @Argument(help: "The store.") var store: String
    @Flag(help: "Compare with the changelog topic (the only comparison there is; required for clarity).")
    var againstChangelog = false
    @OptionGroup var options: StateOptions

    func validate() throws {
        guard againstChangelog else { throw ValidationError("state diff compares a store's snapshots with its changelog: add --against-changelog") }
    }

    func run() async throws {
        let inspector = try options.makeInspector()
        let diff = try await StateCLI.inspecting {
            let store = try inspector.store(named: self.store)
            let progress = ProgressLine()
            let diff = try await inspector.diff(store: store, progress: progress?.report)
            progress?.finish()
            return diff
        }
        for note in diff.notes { printError("note: \(note)") }
        if options.format == .json {
            StateCLI.printJSON(diff.jsonValue)
        } else {
            if !diff.differences.isEmpty {
                var table = TextTable([
                    .init("KEY"), .init("PARTITION", rightAligned: true), .init("STATUS"), .init("AFTER SNAPSHOT"),
                    .init("SNAPSHOT", shrinkable: true), .init("CHANGELOG", shrinkable: true),
                ])
                for d in diff.differences {
                    table.add([d.key, String(d.partition), d.status.rawValue, d.afterSnapshot ? "yes" : "no",
                               StateCLI.cell(d.snapshotValue), StateCLI.cell(d.changelogValue)])
                }
                printLine(table.render(maxWidth: terminalWidth()))
            }
            var summary = "\(diff.store.name): \(diff.keysCompared) keys compared in \(StateCLI.partitionList(diff.partitions)); \(diff.differences.count) differ"
            if !diff.differences.isEmpty {
                let lag = diff.explainedByLag
                summary += lag == diff.differences.count
                    ? ", all written to the changelog after the snapshot (the snapshot lags; a restore replays them)"
                    : " (\(lag) written to the changelog after the snapshot; \(diff.differences.count - lag) NOT explained by lag: snapshot and changelog disagree)"
            }
            printLine(summary)
        }
        if !diff.differences.isEmpty {
            throw ExitCode(ExitStatus.failure)
        }
    }
}
