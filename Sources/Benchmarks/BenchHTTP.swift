import ArgumentParser
import CLISupport
import Foundation
import StreamEngine
import StreamEngineHTTP
import Synchronization

/// `stream-engine-bench --http`: load on the HTTP service of a running job, with
/// wrk on loopback, and the end-to-end time from `POST /purchase-event` until
/// the user's stats are visible through the API. Writes its section of BENCHMARKS.md.
struct HTTPBenchOptions: ParsableArguments {
    static let discussion = """
            Starts `stream-engine run --http 127.0.0.1:0` on the topologies file (embedded Kafka, a local redis-server), \
            loads --events generated shop events and waits until they are processed. Then, with wrk (Debian's wrk) on \
            loopback: GET /price-comparison/{productId} over the products that have prices, and POST /purchase-event \
            (valid purchases of 5,000 users), each paced at --rate requests/s for --seconds and then unpaced (the highest \
            rate it sustains) for --max-seconds; and end to end, --e2e-rate purchases/s for --e2e-seconds, each a new user, \
            timed from sending the POST until the user shows in GET /stores/user-purchases?from=…&to=… (one scan over the \
            users still awaited every 2 ms). The job keeps processing the posted purchases during the whole run. Run it \
            from the repository root on a release build.
            """

    @Flag(name: .customLong("http"), help: ArgumentHelp(
        "Benchmark the HTTP service instead (wrk load, POST → stats visible); writes the `## HTTP service` section of --out.",
        discussion: HTTPBenchOptions.discussion))
    var enabled = false

    @Option(name: .customLong("http-rate"), help: "--http: requests per second of the paced runs.")
    var rate = 2000

    @Option(name: .customLong("http-seconds"), help: "--http: seconds of each paced run.")
    var seconds = 30

    @Option(name: .customLong("http-max-seconds"), help: "--http: seconds of each unpaced (highest rate) run.")
    var maxSeconds = 10

    @Option(name: .customLong("http-e2e-rate"), help: "--http: purchases per second of the end-to-end run.")
    var e2eRate = 200

    @Option(name: .customLong("http-e2e-seconds"), help: "--http: seconds of the end-to-end run.")
    var e2eSeconds = 30

    @Option(name: .customLong("http-events"), help: "--http: generated shop events loaded before the load.")
    var events = 20_000

    @Option(name: .customLong("wrk"), help: "--http: the wrk executable.")
    var wrk = "wrk"

    @Option(name: .customLong("http-job-kafka"), help: ArgumentHelp(
        "A librdkafka setting of the job (`run --kafka`), repeatable; the default asks the brokers to answer fetches within 10 ms.",
        valueName: "KEY=VALUE"))
    var jobKafka: [String] = ["fetch.wait.max.ms=10"]

    /// One wrk run.
    struct WrkResult: Sendable {
        var name: String
        var asked: Int?
        var requests: Int
        var seconds: Double
        var p50, p90, p99, p999, max: Double  // ms
        var errors: Int
        var rate: Double { Double(requests) / seconds }
    }

    /// Runs the benchmark with the job on `config`; writes the section into `out`.
    func run(config: String, out: String) async throws {
        let progress: @Sendable (String) -> Void = { printError("bench-http: \($0)") }
        let loadAtStart = loadAverage()
        let exe = try streamEngineExecutablePath()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("bench-http-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }

        progress("starting stream-engine run --http on \(config)")
        let job = try BenchChildProcess(exe, ["run", "--config", config, "--http", "127.0.0.1:0", "--state-dir", "\(work)/state", "--log-level", "warning"]
                                   + jobKafka.flatMap { ["--kafka", $0] })
        defer { job.kill() }
        guard try await job.waitForLine(prefix: "HTTP service: ", timeout: .seconds(120)) != nil,
              let base = job.line(prefix: "HTTP service: ")?.split(separator: " ").first.map(String.init),
              let bootstrap = job.line(prefix: "embedded Kafka cluster (3 brokers): ") else {
            throw CLIFailure("the job did not start its HTTP service: \(job.output.suffix(2000))")
        }
        progress("loading \(events) generated events")
        let gen = try BenchChildProcess(exe, ["generate", "--events", String(events), "--seed", "42", "--bootstrap-servers", bootstrap])
        guard try await gen.wait(timeout: .seconds(600)) == 0 else { throw CLIFailure("generate failed: \(gen.output.suffix(2000))") }
        let client = ForwardingClient(timeout: .seconds(10))
        try await waitUntilProcessed(base: base, client: client, progress: progress)

        var products: [String] = []
        for i in 1...400 {
            let r = try await client.request(method: "GET", baseURL: base, pathAndQuery: "/price-comparison/p-\(i)")
            if r.status == 200 { products.append("/price-comparison/p-\(i)") }
        }
        guard !products.isEmpty else { throw CLIFailure("no product has prices after loading the events") }
        progress("\(products.count) products with prices")

        let now = EventTimeText.now()
        let getScript = Self.luaScript(request: """
            local paths = { \(products.map { "\"\($0)\"" }.joined(separator: ", ")) }
            request = function()
              n = n + 1
              return wrk.format("GET", paths[(n % #paths) + 1])
            end
            """)
        let postScript = Self.luaScript(request: """
            request = function()
              n = n + 1
              local body = string.format('{"orderId":"load-%d-%d","userId":"load-u-%d","productId":"p-%d","category":"music","price":12.5,"quantity":1,"timestamp":"\(now)"}', tid, n, (n * 7 + tid) % 5000, n % 300 + 1)
              return wrk.format("POST", "/purchase-event", {["Content-Type"] = "application/json"}, body)
            end
            """)
        var results: [WrkResult] = []
        for (name, script) in [("GET /price-comparison/{productId}", getScript), ("POST /purchase-event", postScript)] {
            progress("\(name): \(rate) requests/s for \(seconds) s")
            results.append(try await runWrk(name: name, script: script, paced: rate, seconds: seconds, base: base, work: work))
            progress("  \(Self.describe(results.last!))")
            progress("\(name): unpaced for \(maxSeconds) s")
            results.append(try await runWrk(name: name, script: script, paced: nil, seconds: maxSeconds, base: base, work: work))
            progress("  \(Self.describe(results.last!))")
            try await waitUntilProcessed(base: base, client: client, progress: progress)
        }

        progress("end to end: \(e2eRate) purchases/s for \(e2eSeconds) s")
        let e2e = try await endToEnd(base: base, client: client, now: now)
        progress("  \(e2e.samples.count) samples, p50 \(Self.ms(e2e.percentile(50))) ms, p99 \(Self.ms(e2e.percentile(99))) ms, \(e2e.failures) failures")

        job.terminate()
        _ = try await job.wait(timeout: .seconds(60))
        let section = report(results: results, e2e: e2e, products: products.count, loadAtStart: loadAtStart, config: config)
        try Self.replaceSection(in: out, section: section)
        print(section)
        progress("wrote the HTTP service section of \(out)")
    }

    // MARK: wrk

    static func luaScript(request: String) -> String {
        """
        -- Written by stream-engine-bench --http.
        n = 0
        tid = 0
        local threads = 0
        setup = function(thread)
          threads = threads + 1
          thread:set("tid", threads)
        end
        pace = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
        delay = function() return pace end
        \(request)
        done = function(summary, latency, requests)
          local e = summary.errors
          io.write(string.format('RESULT {"requests":%d,"duration_us":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"errors":%d}\\n',
            summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
            latency:percentile(99.9), latency.max, e.connect + e.read + e.write + e.status + e.timeout))
        end
        """
    }

    /// Paced: 64 connections, each waiting 64,000 / (1.05 × rate) − 2 ms between requests (wrk has no
    /// fixed rate; its delays are whole milliseconds and the request itself takes a few, so the pacing
    /// aims 5 % high to reach the asked rate); unpaced: 32 connections back to back.
    func runWrk(name: String, script: String, paced: Int?, seconds: Int, base: String, work: String) async throws -> WrkResult {
        let file = "\(work)/\(UUID().uuidString.prefix(6)).lua"
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        let connections = paced == nil ? 32 : 64
        let delay = paced.map { max(0, Int(Double(connections * 1000) / (Double($0) * 1.05)) - 2) } ?? 0
        let p = try BenchChildProcess(wrk, ["-t2", "-c\(connections)", "-d\(seconds)s", "--timeout", "5s", "-s", file, base],
                                 environment: ["BENCH_DELAY_MS": String(delay)])
        guard try await p.wait(timeout: .seconds(Double(seconds + 60))) == 0,
              let line = p.line(prefix: "RESULT "), let doc = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw CLIFailure("wrk failed: \(p.output.suffix(2000))")
        }
        func v(_ k: String) -> Double { (doc[k] as? NSNumber)?.doubleValue ?? .nan }
        return WrkResult(name: name, asked: paced, requests: Int(v("requests")), seconds: v("duration_us") / 1e6,
                         p50: v("p50") / 1000, p90: v("p90") / 1000, p99: v("p99") / 1000, p999: v("p999") / 1000, max: v("max") / 1000,
                         errors: Int(v("errors")))
    }

    // MARK: End to end

    struct EndToEnd: Sendable {
        var samples: [Double] = []  // ms
        var posts: [Double] = []  // ms
        var failures = 0
        var sent = 0
        var seconds = 0.0
        func percentile(_ p: Double) -> Double { Self.percentile(samples, p) }
        static func percentile(_ values: [Double], _ p: Double) -> Double {
            guard !values.isEmpty else { return .nan }
            let s = values.sorted()
            let rank = Int((p / 100 * Double(s.count)).rounded(.up))  // nearest rank
            return s[min(s.count - 1, max(0, rank - 1))]
        }
    }

    /// Sends `e2eRate` purchases/s, each of a new user, and meanwhile one poller scans
    /// `GET /stores/user-purchases?from=…&to=…` over the users still awaited every 2 ms: a user's
    /// latency runs from sending its POST to the first scan that shows it. (One scan for all
    /// awaited users keeps the measuring load at 500 requests/s whatever the latency.)
    func endToEnd(base: String, client: ForwardingClient, now: String) async throws -> EndToEnd {
        let run = UUID().uuidString.prefix(6).lowercased()
        let total = e2eRate * e2eSeconds
        let interval = Duration.seconds(1) / e2eRate
        let clock = ContinuousClock()
        let user: @Sendable (Int) -> String = { "e2e-\(run)-" + String(format: "%07d", $0) }
        struct Probes: Sendable {
            var sentAt: [Int: ContinuousClock.Instant] = [:]
            var seen: [Int: Double] = [:]
            var posts: [Double] = []
            var failed = 0
            var sendingDone = false
        }
        final class Box: Sendable {
            let state = Mutex(Probes())
            func withLock<R: Sendable>(_ body: (inout Probes) -> R) -> R { state.withLock { body(&$0) } }
        }
        let probes = Box()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withThrowingTaskGroup(of: Void.self) { senders in
                    for i in 0..<total {
                        try await clock.sleep(until: start + interval * i)
                        senders.addTask {
                            let body = #"{"orderId":"e2e-\#(run)-\#(i)","userId":"\#(user(i))","productId":"p-1","category":"music","price":9.5,"quantity":1,"timestamp":"\#(now)"}"#
                            let t0 = clock.now
                            probes.withLock { $0.sentAt[i] = t0 }
                            let posted = try? await client.request(method: "POST", baseURL: base, pathAndQuery: "/purchase-event", body: Array(body.utf8))
                            let ms = (clock.now - t0).milliseconds
                            probes.withLock { p in
                                if posted?.status == 202 { p.posts.append(ms) } else { p.failed += 1; p.sentAt.removeValue(forKey: i) }
                            }
                        }
                    }
                    try await senders.waitForAll()
                }
                probes.withLock { $0.sendingDone = true }
            }
            group.addTask {
                var doneSince: ContinuousClock.Instant?
                while true {
                    let (pending, done) = probes.withLock { p in (p.sentAt.keys.filter { p.seen[$0] == nil }, p.sendingDone) }
                    if done {
                        if pending.isEmpty { return }
                        doneSince = doneSince ?? clock.now
                        if clock.now - doneSince! > .seconds(10) { return }  // the rest count as failures
                    }
                    if let lo = pending.min(), let hi = pending.max() {
                        let path = "/stores/user-purchases?from=\(user(lo))&to=\(user(hi))&limit=10000"
                        if let r = try? await client.request(method: "GET", baseURL: base, pathAndQuery: path), r.status == 200,
                           let doc = (try? JSONValue.parse(r.body))?.objectValue {
                            let at = clock.now
                            let prefix = "e2e-\(run)-"
                            probes.withLock { p in
                                for e in doc["entries"]?.arrayValue ?? [] {
                                    guard let k = e["key"]?.stringValue, k.hasPrefix(prefix), let i = Int(k.dropFirst(prefix.count)),
                                          p.seen[i] == nil, let t0 = p.sentAt[i] else { continue }
                                    p.seen[i] = (at - t0).milliseconds
                                }
                            }
                        }
                    }
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            try await group.waitForAll()
        }
        return probes.withLock { p in
            var r = EndToEnd()
            r.sent = total
            r.samples = Array(p.seen.values)
            r.posts = p.posts
            r.failures = total - p.seen.count
            r.seconds = (clock.now - start).milliseconds / 1000
            return r
        }
    }

    // MARK: Helpers

    /// Waits until the consumer lag is 0 on every partition and the processed count stops moving.
    func waitUntilProcessed(base: String, client: ForwardingClient, progress: (String) -> Void) async throws {
        let deadline = ContinuousClock.now + .seconds(300)
        var last = -1.0
        while ContinuousClock.now < deadline {
            let r = try await client.request(method: "GET", baseURL: base, pathAndQuery: "/metrics")
            let text = String(decoding: r.body, as: UTF8.self)
            var lag = 0.0, processed = 0.0, sawLag = false
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let value = Double(line.split(separator: " ").last ?? "") ?? 0
                if line.hasPrefix("stream_engine_consumer_lag{") { lag += value; sawLag = true }
                if line.hasPrefix("stream_engine_records_processed{") { processed += value }
            }
            if sawLag && lag == 0 && processed == last { return }
            last = processed
            try await Task.sleep(for: .seconds(1))
        }
        progress("warning: the job still had lag after 300 s")
    }

    static var buildConfiguration: String {
        ((try? streamEngineExecutablePath()) ?? "").contains("/release/") ? "release" : "debug (figures not representative)"
    }

    func report(results: [WrkResult], e2e: EndToEnd, products: Int, loadAtStart: String, config: String) -> String {
        let machine = MachineInfo.current()
        var s = """
            ## HTTP service (`stream-engine-bench --http`)

            \(Self.startMarker)
            \(ISO8601DateFormatter().string(from: Date())), commit \(commandFirstLine(["git", "rev-parse", "--short", "HEAD"]) ?? "?"), \
            \(machine.cores) cores (load average \(loadAtStart) at the start, \(loadAverage()) at the end: other work shares the machine), \
            a \(Self.buildConfiguration) build, `\((["stream-engine-bench"] + CommandLine.arguments.dropFirst()).joined(separator: " "))`. \
            One `stream-engine run --http\(jobKafka.map { " --kafka \($0)" }.joined())` process (embedded 3-broker Kafka, local \
            redis-server, every pipeline of `\(config)` running and processing what the load posts) after \(events) generated events; wrk (`-t2`, `--timeout 5s`) on loopback, on the \
            same 2 cores. Paced runs: 64 connections, each pausing 64,000 / (1.05 × rate) − 2 ms between requests (wrk has no \
            fixed-rate mode; the achieved rate is what counts, and must reach 98 % of the asked one). Unpaced: 32 connections back to back. GET spreads over the \
            \(products) products that have prices; POST sends valid purchases of 5,000 users, each answered 202 after Kafka's acknowledgement.

            | run | asked (req/s) | achieved (req/s) | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | goal |
            |---|---:|---:|---:|---:|---:|---:|---:|---:|---|

            """
        for r in results {
            let goal: String
            if let asked = r.asked {
                let met = r.p99 <= 10 && r.errors == 0 && r.rate >= Double(asked) * 0.98
                goal = "p99 ≤ 10 ms, no errors at \(asked)/s: **\(met ? "met" : "not met")**"
            } else {
                goal = "highest rate"
            }
            s += "| \(r.name) | \(r.asked.map(String.init) ?? "unpaced") | \(BenchFormat.int(Int(r.rate.rounded()))) | \(Self.ms(r.p50)) | \(Self.ms(r.p90)) | "
                + "\(Self.ms(r.p99)) | \(Self.ms(r.p999)) | \(Self.ms(r.max)) | \(r.errors) | \(goal) |\n"
        }
        let p99 = e2e.percentile(99)
        s += """

            End to end, `POST /purchase-event` → the user's stats visible through the API (a new user per purchase; one \
            `GET /stores/user-purchases?from=…&to=…` over the users still awaited every 2 ms): \(e2e.sent) purchases at \
            \(e2eRate)/s over \(String(format: "%.1f", e2e.seconds)) s, \(e2e.samples.count) seen, \(e2e.failures) failures (not 202, or not visible within 10 s).

            | | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | goal |
            |---|---:|---:|---:|---:|---:|---|
            | POST → stats visible | \(Self.ms(e2e.percentile(50))) | \(Self.ms(e2e.percentile(90))) | \(Self.ms(p99)) | \(Self.ms(e2e.percentile(99.9))) | \(Self.ms(e2e.percentile(100))) | p99 ≤ 50 ms: **\(p99 <= 50 && e2e.failures == 0 ? "met" : "not met")** |
            | the POST alone (202) | \(Self.ms(EndToEnd.percentile(e2e.posts, 50))) | \(Self.ms(EndToEnd.percentile(e2e.posts, 90))) | \(Self.ms(EndToEnd.percentile(e2e.posts, 99))) | \(Self.ms(EndToEnd.percentile(e2e.posts, 99.9))) | \(Self.ms(EndToEnd.percentile(e2e.posts, 100))) | |
            \(Self.endMarker)

            """
        return s
    }

    static let startMarker = "<!-- bench-http: start -->"
    static let endMarker = "<!-- bench-http: end -->"

    /// The section (from its heading to the end marker) in the file at `path`, if any.
    static func existingSection(in path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let start = text.range(of: "## HTTP service (`stream-engine-bench --http`)"),
              let end = text.range(of: endMarker, range: start.upperBound..<text.endIndex) else { return nil }
        return String(text[start.lowerBound..<end.upperBound]) + "\n"
    }

    /// Replaces the section (from its heading to the end marker) or appends it.
    static func replaceSection(in path: String, section: String) throws {
        var text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let heading = "## HTTP service (`stream-engine-bench --http`)"
        if let start = text.range(of: heading), let end = text.range(of: endMarker, range: start.upperBound..<text.endIndex) {
            var upper = end.upperBound
            if upper < text.endIndex, text[upper] == "\n" { upper = text.index(after: upper) }
            text.replaceSubrange(start.lowerBound..<upper, with: section)
        } else {
            if !text.isEmpty && !text.hasSuffix("\n\n") { text += text.hasSuffix("\n") ? "\n" : "\n\n" }
            text += section
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func ms(_ v: Double) -> String { v.isNaN ? "–" : String(format: v < 10 ? "%.2f" : "%.1f", v) }

    static func describe(_ r: WrkResult) -> String {
        "\(BenchFormat.int(Int(r.rate.rounded()))) req/s, p50 \(ms(r.p50)) ms, p99 \(ms(r.p99)) ms, max \(ms(r.max)) ms, \(r.errors) errors"
    }
}

/// The current time as ISO-8601 (the event time of posted purchases).
enum EventTimeText {
    static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date())
    }
}

extension Duration {
    fileprivate var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}

/// A child process whose combined output is collected line by line.
final class BenchChildProcess: Sendable {
    private let process: Process
    private let lines = Mutex<[String]>([])
    private let partial = Mutex<String>("")

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        p.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        process = p
        try p.run()
        let thread = Thread { [self] in
            while true {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                let text = self.partial.withLock { buf -> [String] in
                    buf += String(decoding: chunk, as: UTF8.self)
                    var parts = buf.components(separatedBy: "\n")
                    buf = parts.removeLast()
                    return parts
                }
                self.lines.withLock { $0 += text }
            }
            let rest = self.partial.withLock { $0 }
            if !rest.isEmpty { self.lines.withLock { $0.append(rest) } }
        }
        thread.start()
    }

    var output: String { lines.withLock { $0.joined(separator: "\n") } }

    func line(prefix: String) -> String? {
        lines.withLock { $0.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }
    }

    func waitForLine(prefix: String, timeout: Duration) async throws -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let l = line(prefix: prefix) { return l }
            if !process.isRunning { return line(prefix: prefix) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Waits for the exit; its status, or nil after `timeout` (the process is killed).
    func wait(timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline { kill(); return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(100))  // the reader thread drains the pipe
        return process.terminationStatus
    }

    func terminate() { if process.isRunning { Foundation.kill(process.processIdentifier, SIGTERM) } }
    func kill() { if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) } }
}
