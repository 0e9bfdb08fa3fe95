import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// An HTTP answer, for assertions.
struct HTTPAnswer: Sendable, CustomStringConvertible {
    let status: Int
    let headers: [String: String]
    let body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    var description: String { "\(status) \(text)" }

    func json() throws -> [String: Any] {
        guard let o = try JSONSerialization.jsonObject(with: body) as? [String: Any] else { throw CLIError("not a JSON object: \(text)") }
        return o
    }

    func header(_ name: String) -> String? {
        headers.first { $0.key.lowercased() == name.lowercased() }?.value
    }

    /// Checks that this is a problem document with the given status (and field).
    func expectProblem(_ status: Int, field: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(self.status == status, "\(self)", sourceLocation: sourceLocation)
        #expect(header("Content-Type") == "application/problem+json", "\(headers)", sourceLocation: sourceLocation)
        let doc = try json()
        #expect(doc["status"] as? Int == status && doc["type"] is String && doc["title"] is String && doc["detail"] is String,
                "\(doc)", sourceLocation: sourceLocation)
        if let field { #expect(doc["field"] as? String == field, "\(doc)", sourceLocation: sourceLocation) }
    }
}

/// A small HTTP client over URLSession (no caching, no cookies stored).
enum HTTP {
    static let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.httpShouldSetCookies = false
        c.timeoutIntervalForRequest = 30
        return URLSession(configuration: c)
    }()

    static func request(_ method: String, _ url: String, body: String? = nil, headers: [String: String] = [:]) async throws -> HTTPAnswer {
        var r = URLRequest(url: URL(string: url)!)
        r.httpMethod = method
        if let body {
            r.httpBody = Data(body.utf8)
            r.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        for (k, v) in headers { r.setValue(v, forHTTPHeaderField: k) }
        let (data, response) = try await session.data(for: r)
        let http = response as! HTTPURLResponse
        var h: [String: String] = [:]
        for (k, v) in http.allHeaderFields { h["\(k)"] = "\(v)" }
        return HTTPAnswer(status: http.statusCode, headers: h, body: data)
    }

    static func get(_ url: String, headers: [String: String] = [:]) async throws -> HTTPAnswer { try await request("GET", url, headers: headers) }
    static func post(_ url: String, _ body: String, headers: [String: String] = [:]) async throws -> HTTPAnswer {
        try await request("POST", url, body: body, headers: headers)
    }

    /// Polls `url` until `condition` holds (or `timeout`); returns the last answer.
    static func poll(_ url: String, timeout: Duration = .seconds(60), _ condition: (HTTPAnswer) -> Bool) async throws -> HTTPAnswer {
        let deadline = ContinuousClock.now + timeout
        var last: HTTPAnswer?
        while ContinuousClock.now < deadline {
            if let a = try? await get(url) {
                last = a
                if condition(a) { return a }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        if let last { return last }
        return try await get(url)
    }
}

/// Prometheus text: the value of the sample `name{labels}` (labels in any order), summed over matches.
func metricValue(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
    var total: Double?
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let s = String(line)
        let nameEnd = s.firstIndex { $0 == "{" || $0 == " " } ?? s.endIndex
        guard s[..<nameEnd] == name else { continue }
        var found: [String: String] = [:]
        if s[nameEnd] == "{", let close = s.firstIndex(of: "}") {
            for pair in s[s.index(after: nameEnd)..<close].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { found[String(kv[0])] = String(kv[1]).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            }
        }
        guard labels.allSatisfy({ found[$0.key] == $0.value }), let v = Double(s.split(separator: " ").last ?? "") else { continue }
        total = (total ?? 0) + v
    }
    return total
}

/// A `stream-engine run|serve --http` process and what it printed at start.
struct HTTPInstance {
    let process: CLIProcess
    let url: String
    let bootstrap: String?
    let redisURL: String?

    /// Starts `stream-engine args…` and waits for its "HTTP service: URL" line.
    static func start(_ args: [String], timeout: Duration = .seconds(90)) async throws -> HTTPInstance {
        let p = try CLIProcess(args, directory: repositoryRoot)
        let ok = try await p.waitForOutput(timeout: timeout) { out, _ in out.contains("HTTP service: ") }
        let (out, err) = p.outputSoFar
        guard ok else {
            p.signal(SIGKILL)
            throw CLIError("\(args) did not start its HTTP service; stdout: \(out) stderr: \(err.suffix(3000))")
        }
        func after(_ prefix: String) -> String? {
            out.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)).split(separator: " ").first.map(String.init) ?? "" }
        }
        return HTTPInstance(process: p, url: after("HTTP service: ")!, bootstrap: after("embedded Kafka cluster (3 brokers): "),
                            redisURL: after("local redis-server: "))
    }

    /// SIGTERM and wait: a graceful stop exits 0.
    func stop() async throws -> CLIResult {
        process.signal(SIGTERM)
        return try await process.wait(timeout: .seconds(60))
    }
}

/// Where tests leave files for people to look at (the dashboard screenshot):
/// `$TEST_ARTIFACTS_DIR`, else `test-artifacts/` in the repository.
let testArtifactsDirectory: String = {
    let dir = ProcessInfo.processInfo.environment["TEST_ARTIFACTS_DIR"] ?? (repositoryRoot as NSString).appendingPathComponent("test-artifacts")
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()
