import ArgumentParser
#if canImport(CGlibcMalloc)
import CGlibcMalloc
#endif
import Foundation
import Logging
import StreamEngine
import Synchronization
import Topologies

/// What the command-line tools (`stream-engine`, `stream-engine-bench`) share: failures with
/// exit codes, `--log-level`, the operator registry, config loading and output helpers.

/// A failure that ends a command with a one-line reason on stderr
/// (`stream-engine: <message>`) and an exit code.
public struct CLIFailure: Error, CustomStringConvertible {
    /// The reason, printed after `stream-engine: `.
    public var message: String
    /// The process exit code.
    public var exitCode: Int32

    public init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }

    public var description: String { message }
}

/// Exit codes shared by the commands.
public enum ExitStatus {
    /// Done; found.
    public static let ok: Int32 = 0
    /// Failed; for `validate`, the file has errors; for `state get`, the key does not exist.
    public static let failure: Int32 = 1
    /// Usage or I/O error (bad options, unknown store, unreadable or corrupt file, Kafka unreachable).
    public static let usage: Int32 = 2
}

/// `--log-level`, shared by every command. Logs go to stderr, never stdout.
public struct LoggingOptions: ParsableArguments {
    public init() {}

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Log level on stderr: trace, debug, info, notice, warning, error or critical.",
            discussion: "Defaults to info for `run` and `dev-broker`, warning for the other commands."))
    public var logLevel: Logger.Level?

    /// Installs the stderr log handler at the chosen level (once per process) and returns a logger.
    public func bootstrap(label: String = "stream-engine", defaultLevel: Logger.Level) -> Logger {
        let level = logLevel ?? defaultLevel
        LoggingBootstrap.once(level: level)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Makes `LoggingSystem.bootstrap` safe to reach from several places: only the first call installs a handler.
public enum LoggingBootstrap {
    private static let done = Mutex(false)

    public static func once(level: Logger.Level) {
        let first = done.withLock { wasDone in
            defer { wasDone = true }
            return !wasDone
        }
        guard first else { return }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// The operator registry of this build: the engine's generic aggregators and
/// processors plus the e-commerce ones of the Topologies module.
public func makeRegistry() -> OperatorRegistry {
    var registry = OperatorRegistry()
    Topologies.registerShopOperators(into: &registry)
    return registry
}

/// Loads and validates a configuration file with every registered operator name.
/// On errors, prints each diagnostic (`file:line:col: error: …`) to stderr and
/// throws a ``CLIFailure`` with `exitCode`.
public func loadConfig(_ path: String, registry: OperatorRegistry, exitCode: Int32 = ExitStatus.failure) throws -> StreamConfig {
    do {
        return try ConfigLoader.load(path: path, registry: registry.names)
    } catch {
        for d in error.diagnostics { printError(d.description) }
        let n = error.diagnostics.count
        throw CLIFailure("\(path): \(n) error\(n == 1 ? "" : "s")", exitCode: exitCode)
    }
}

/// Parses repeated `KEY=VALUE` options.
public func parseKeyValues(_ items: [String], option: String) throws -> [String: String] {
    var out: [String: String] = [:]
    for item in items {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw CLIFailure("\(option) \(item): expected KEY=VALUE, e.g. \(option) security.protocol=SSL", exitCode: ExitStatus.usage)
        }
        out[String(item[..<eq])] = String(item[item.index(after: eq)...])
    }
    return out
}

/// Writes a line to stderr.
public func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Writes a line to stdout and flushes it (stdout is block-buffered when it is a pipe).
public func printLine(_ line: String) {
    print(line)
    fflush(nil)  // all output streams: stdout is block-buffered on a pipe
}

/// Whether a file descriptor is a terminal.
public func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

/// The terminal's width in columns, if stdout is a terminal.
public func terminalWidth() -> Int? {
    guard isTerminal(STDOUT_FILENO) else { return nil }
    var size = winsize()
    guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
    return Int(size.ws_col)
}

/// Limits glibc's malloc to 2 arenas unless `MALLOC_ARENA_MAX` is set.
///
/// glibc gives a thread that finds the arenas busy one of its own, up to 8 per
/// core, and an arena keeps what its threads freed. The engine's threads
/// (librdkafka's broker threads, the handles' executors, the cooperative pool)
/// free on other threads much of what they allocate (fetched records, changelog
/// and Redis batches), so each arena holds a peak of its own: limited to 2,
/// the peak RSS of a 1M-key run was 329 MiB against 411 (BENCHMARKS.md, Memory).
/// Set `MALLOC_ARENA_MAX` to choose another limit.
public func limitMallocArenas() {
    #if canImport(CGlibcMalloc)
    guard ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil else { return }
    _ = mallopt(M_ARENA_MAX, 2)
    #endif
}

/// Hands the memory glibc's malloc holds free back to the system (`malloc_trim(0)`), e.g.
/// after a long phase's data was released, so that what runs next starts from a small heap.
public func returnFreedMemory() {
    #if canImport(CGlibcMalloc)
    _ = malloc_trim(0)
    #endif
}

extension AsyncParsableCommand {
    /// Parses and runs a command like ArgumentParser's default entry point, with
    /// the tools' exit codes: usage errors exit 2, and a ``CLIFailure`` prints
    /// `<tool>: <reason>` on stderr and exits with its code.
    public static func runWithExitCodes(tool: String) async {
        limitMallocArenas()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CLIFailure {
            printError("\(tool): \(failure.message)")
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
            printError("\(tool): \(error)")
            Foundation.exit(ExitStatus.failure)
        }
    }
}
