import Foundation
import Synchronization

/// What a finished `stream-engine` process left behind.
struct CLIResult: Sendable, CustomStringConvertible {
    let status: Int32
    let stdout: String
    let stderr: String

    var description: String { "exit \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }

    /// stdout parsed with JSONSerialization.
    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw CLIError("stdout is not a JSON object: \(stdout)")
        }
        return object
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The built `stream-engine` executable next to the test bundle
/// (`.build…/debug/stream-engine`), or `STREAM_ENGINE_BIN`.
let streamEngineBinary: String = {
    if let path = ProcessInfo.processInfo.environment["STREAM_ENGINE_BIN"] { return path }
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return exe.deletingLastPathComponent().appendingPathComponent("stream-engine").path
}()

/// The repository root (for the shipped `topologies.yaml`).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// A child process with its stdout and stderr captured by reader threads
/// (so that a chatty child never blocks on a full pipe). Waiting polls with
/// `Task.sleep`, never blocking the cooperative pool.
final class CLIProcess: Sendable {
    private let process: Process
    private let output = CapturedOutput()

    /// What the reader threads collected.
    final class CapturedOutput: Sendable {
        let state = Mutex<(out: Data, err: Data, closed: Int)>((Data(), Data(), 0))
        func withLock<R>(_ body: (inout (out: Data, err: Data, closed: Int)) -> R) -> R { state.withLock { body(&$0) } }
    }

    /// Starts `executable` (default `stream-engine`) with `arguments`.
    init(_ arguments: [String], executable: String = streamEngineBinary, directory: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        self.process = process
        try process.run()
        for (pipe, isOut) in [(out, true), (err, false)] {
            let thread = Thread { [output] in
                while true {
                    let chunk = pipe.fileHandleForReading.availableData
                    let done = chunk.isEmpty
                    output.withLock {
                        if isOut { $0.out.append(chunk) } else { $0.err.append(chunk) }
                        if done { $0.closed += 1 }
                    }
                    if done { break }
                }
            }
            thread.name = "cli-pipe-reader"
            thread.start()
        }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Sends a signal (SIGTERM, SIGINT, SIGKILL).
    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// For a test's clean-up whether or not its expectations passed: SIGTERM, up to `grace`
    /// for a graceful stop (which stops what the process started, such as the local
    /// redis-server of `run`; SIGKILL would leave that running), then SIGKILL.
    func terminate(grace: Duration = .seconds(15)) {
        guard isRunning else { return }
        signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        if isRunning { signal(SIGKILL) }
    }

    /// What the process wrote to stdout and stderr so far.
    var outputSoFar: (stdout: String, stderr: String) {
        output.withLock { (String(decoding: $0.out, as: UTF8.self), String(decoding: $0.err, as: UTF8.self)) }
    }

    /// Waits until `condition` holds for the output so far; false if the process ended or `timeout` passed first.
    func waitForOutput(timeout: Duration = .seconds(60), _ condition: (_ stdout: String, _ stderr: String) -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (out, err) = outputSoFar
            if condition(out, err) { return true }
            if !process.isRunning { return condition(outputSoFar.stdout, outputSoFar.stderr) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Waits for the process to exit and its output to be read; kills it after `timeout`.
    ///
    /// The output is complete when both pipes reach their end. A pipe's write end can also be
    /// held by another child that was being spawned at the same moment (it inherits the
    /// descriptors open then), which keeps the end from coming until that child exits; so once
    /// this process has exited, its pipes get `drain` to close, and what was read by then is
    /// the output (the reader threads read whatever the process wrote as soon as it is there).
    func wait(timeout: Duration = .seconds(60), drain: Duration = .seconds(3)) async throws -> CLIResult {
        let deadline = ContinuousClock.now + timeout
        var exitedAt: ContinuousClock.Instant?
        while process.isRunning || output.withLock({ $0.closed }) < 2 {
            if !process.isRunning {
                let now = ContinuousClock.now
                if exitedAt == nil { exitedAt = now }
                if let exitedAt, now - exitedAt > drain { break }
            }
            if ContinuousClock.now > deadline {
                signal(SIGKILL)
                let partial = output.withLock { (String(decoding: $0.out, as: UTF8.self), String(decoding: $0.err, as: UTF8.self)) }
                throw CLIError("\(process.arguments ?? []) did not finish within \(timeout); stdout: \(partial.0) stderr: \(partial.1)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return output.withLock {
            CLIResult(status: process.terminationStatus, stdout: String(decoding: $0.out, as: UTF8.self), stderr: String(decoding: $0.err, as: UTF8.self))
        }
    }
}

/// Runs `stream-engine` with `arguments` to completion.
func cli(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> CLIResult {
    try await CLIProcess(arguments).wait(timeout: timeout)
}

/// Runs any executable to completion.
func runTool(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws -> CLIResult {
    try await CLIProcess(arguments, executable: executable).wait(timeout: timeout)
}

/// A fresh temporary directory, removed by `cleanup()`.
struct TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("runner-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes a file in the directory and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = (path as NSString).appendingPathComponent(name)
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}
