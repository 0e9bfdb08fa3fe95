
#if canImport(Glibc)
import CLISupport
import ChildProcess
import Foundation
import Glibc
import Histogram
import KafkaClient
import StreamEngine
import ThreadExecutors
#endif

// Helpers of `stream-engine-bench`: statistics, the machine, CPU pinning and child processes.

/// Min / median / max of a series of measurements.
struct Spread: Sendable {
    var values: [Double]

    init(_ values: [Double]) { self.values = values }

    var isEmpty: Bool { values.isEmpty }
    var min: Double { values.min() ?? .nan }
    var max: Double { values.max() ?? .nan }
    var median: Double {
        guard !values.isEmpty else { return .nan }
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// `a / b / c` with `format` applied to each of min, median and max.
    func text(_ format: (Double) -> String) -> String {
        isEmpty ? "–" : "\(format(min)) / \(format(median)) / \(format(max))"
    }
}

/// Latency percentiles through an HdrHistogram (microsecond resolution, 3 significant digits).
struct LatencyHistogram {
    private var histogram = Histogram<UInt64>(numberOfSignificantValueDigits: .three)

    /// Records latencies given in milliseconds.
    init<S: Sequence>(millis: S) where S.Element == Double {
        histogram.autoResize = true
        for ms in millis { _ = histogram.record(UInt64((Swift.max(ms, 0) * 1000).rounded())) }
    }

    /// The value at percentile `p` (0...100) in milliseconds; NaN when nothing was recorded.
    func percentile(_ p: Double) -> Double {
        histogram.totalCount == 0 ? .nan : Double(histogram.valueAtPercentile(p)) / 1000
    }
}

enum BenchFormat {
    /// 1234567 → "1,234,567".
    static func int(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// A rate: 2,470,000 → "2.47M", 9,012 → "9,012", 312.4 → "312".
    static func rate(_ r: Double) -> String {
        guard r.isFinite else { return "–" }
        if r >= 1_000_000 { return String(format: "%.2fM", r / 1_000_000) }
        if r >= 100_000 { return String(format: "%.0fk", r / 1000) }
        return int(Int(r.rounded()))
    }

    static func seconds(_ s: Double) -> String {
        guard s.isFinite else { return "–" }
        return s < 10 ? String(format: "%.2f s", s) : String(format: "%.1f s", s)
    }

    static func millis(_ ms: Double) -> String {
        guard ms.isFinite else { return "–" }
        return ms < 10 ? String(format: "%.2f", ms) : String(format: "%.1f", ms)
    }

    static func ratio(_ r: Double) -> String {
        guard r.isFinite else { return "–" }
        if r >= 10 { return String(format: "%.0f×", r) }
        return String(format: r >= 1 ? "%.2f×" : "%.3f×", r)
    }

    static func percent(_ r: Double) -> String {
        guard r.isFinite else { return "–" }
        return String(format: "%.1f %%", r * 100)
    }

    static func mib(_ kib: Int) -> String { String(format: "%.0f MiB", Double(kib) / 1024) }
}

// MARK: - The machine

/// What the report says about the machine and the software.
struct MachineInfo: Sendable {
    var cores: Int
    var cpuModel: String
    var memTotalKiB: Int
    var kernel: String
    var os: String

    static func current() -> MachineInfo {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown"
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let osRelease = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8)) ?? ""
        let pretty = osRelease.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
            .map { String($0.dropFirst("PRETTY_NAME=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) } ?? "Linux"
        return MachineInfo(
            cores: ProcessInfo.processInfo.activeProcessorCount, cpuModel: model,
            memTotalKiB: procStatusField("/proc/meminfo", "MemTotal") ?? 0, kernel: release, os: pretty)
    }
}

/// The 1-, 5- and 15-minute load averages (/proc/loadavg).
func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

/// A `Name:   123 kB` field of a /proc file, in kB.
func procStatusField(_ path: String, _ name: String) -> Int? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
        let digits = line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first
        return digits.flatMap { Int($0) }
    }
    return nil
}

/// The first line a command prints (stdout then stderr), or nil if it cannot run.
func commandFirstLine(_ arguments: [String]) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    do { try p.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    return String(decoding: data, as: UTF8.self).split(separator: "\n").first.map(String.init)
}

// MARK: - CPU pinning

/// Pins threads and processes to CPUs (`sched_setaffinity`). Threads inherit
/// the affinity of the thread that creates them, and processes that of the
/// thread that spawns them.
enum CPUPinning {
    private typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
    private typealias GetTid = @convention(c) () -> pid_t

    private static let setAffinity: SetAffinity? = dlsym(nil, "sched_setaffinity").map { unsafeBitCast($0, to: SetAffinity.self) }
    private static let getTid: GetTid? = dlsym(nil, "gettid").map { unsafeBitCast($0, to: GetTid.self) }

    /// Pins a thread or process (`0`: the calling thread) to one CPU; false if that failed.
    @discardableResult
    static func pin(_ id: pid_t, cpu: Int) -> Bool {
        guard let setAffinity else { return false }
        var mask = [UInt64](repeating: 0, count: 16)
        mask[cpu / 64] |= 1 << UInt64(cpu % 64)
        return mask.withUnsafeBytes { setAffinity(id, $0.count, $0.baseAddress!) } == 0
    }

    /// Pins every thread of this process to `cpu` (threads created later by them inherit it).
    static func pinAllThreads(cpu: Int) -> Bool {
        let tids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        var ok = !tids.isEmpty
        for t in tids { if let tid = pid_t(t) { ok = pin(tid, cpu: cpu) && ok } }
        return ok
    }

    /// Runs `body` on a new thread pinned to `cpu`: the threads and processes it starts inherit that CPU.
    static func onPinnedThread<T: Sendable>(cpu: Int?, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
            let t = Thread {
                if let cpu { pin(0, cpu: cpu) }
                cont.resume(with: Result { try body() })
            }
            t.name = "bench-pinned"
            t.start()
        }
    }

    /// The CPUs a process may run on, as /proc shows them (`0`, `0-1`).
    static func allowedList(pid: pid_t) -> String {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return "?" }
        return text.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
            .map { $0.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces) } ?? "?"
    }
}

// MARK: - Child processes

/// A finished child process: exit status and wall time.
///
/// (Its `ru_maxrss` is not used: a child started with `posix_spawn` shares this
/// process's memory until it execs, and Linux carries that high-water mark over
/// the exec, so it would report this process's peak. See `peakRSSCommand`.)
struct ChildOutcome: Sendable {
    var status: Int32
    var seconds: Double
    var stdoutPath: String
    var stderrPath: String

    var succeeded: Bool { status == 0 }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// The last lines of stderr, for error messages.
    var stderrTail: String { stderr.split(separator: "\n").suffix(8).joined(separator: "\n") }
}

/// Runs a program (looked up on PATH) to completion on a thread of its own,
/// with stdout and stderr in files.
func runChild(_ arguments: [String], stdoutPath: String, stderrPath: String, environment: [String: String]? = nil) async throws -> ChildOutcome {
    try await runOnDedicatedThread("bench-child") {
        let started = ContinuousClock.now
        do {
            let pid = try ChildProcess.spawn(
                arguments, standardOutput: stdoutPath, standardError: .file(stderrPath), environment: environment)
            let exit = try ChildProcess.waitForExit(pid)
            return ChildOutcome(
                status: exit, seconds: (ContinuousClock.now - started).seconds,
                stdoutPath: stdoutPath, stderrPath: stderrPath)
        } catch {
            throw CLIFailure("\(error)")
        }
    }
}

/// Wraps a command in GNU time (`/usr/bin/time -f %M -o file`), which forks it
/// from its own small process and writes its peak RSS in KiB to `file`.
func peakRSSCommand(_ argv: [String], rssFile: String) throws -> [String] {
    guard access("/usr/bin/time", X_OK) == 0 else {
        throw CLIFailure("measuring an engine process's peak RSS needs GNU time at /usr/bin/time (apt-get install time)")
    }
    return ["/usr/bin/time", "-f", "%M", "-o", rssFile] + argv
}

/// The peak RSS (KiB) GNU time wrote: the last line of the file.
func readPeakRSS(_ rssFile: String) -> Int? {
    let text = (try? String(contentsOfFile: rssFile, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
}

/// The `stream-engine` executable built next to this one (child engine processes run it):
/// `swift build -c release` builds both.
func streamEngineExecutablePath() throws -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    let own = n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    let sibling = URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("stream-engine").path
    guard access(sibling, X_OK) == 0 else {
        throw CLIFailure("no stream-engine executable next to this one at \(sibling): build both (swift build -c release)")
    }
    return sibling
}

/// `stream-engine run` on `cluster` with `config` and `stateDir`, then `extra`; under
/// `taskset -c cpu` when pinned. The command line of every child engine process.
func engineRunCommand(config: String, cluster: EmbeddedKafkaCluster, stateDir: String, cpu: Int?, extra: [String] = []) throws -> [String] {
    let argv = [try streamEngineExecutablePath(), "run", "--config", config, "--bootstrap-servers", cluster.bootstrapServers,
                "--state-dir", stateDir] + extra
    guard let cpu else { return argv }
    return ["taskset", "-c", String(cpu)] + argv
}

/// This process's resident set (KiB), from `/proc/self/status` (`VmRSS`).
func residentSetKiB() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.dropFirst("VmRSS:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
    }
    return nil
}
