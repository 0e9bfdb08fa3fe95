import Foundation
import Testing

/// `validate` and `describe`, run as a user runs them.
@Suite("stream-engine validate and describe")
struct CommandTests {
    static let goodYAML = """
        application.id: count-app
        topologies:
          - name: clicks
            source:
              topics: [clicks]
              key: user
            steps:
              - aggregate: { store: clicks-per-user, aggregator: count }
              - redis: { key: "clicks:{key}", mode: hash, fields: { count: count } }
        """

    @Test("validate: a good file exits 0 and says OK with its pipeline and store counts")
    func validateGood() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let file = try dir.write("good.yaml", Self.goodYAML)
        let r = try await cli(["validate", file])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout == "\(file): OK (1 pipeline, 1 store)\n")
    }

    @Test("validate: a misspelt step exits 1 with file:line:col of the step on stderr")
    func validateMisspelt() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let text = Self.goodYAML.replacingOccurrences(of: "- aggregate:", with: "- agregate:")
        let file = try dir.write("bad.yaml", text)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let line = lines.firstIndex { $0.contains("agregate") }! + 1
        let column = lines[line - 1].distance(from: lines[line - 1].startIndex, to: lines[line - 1].range(of: "agregate")!.lowerBound) + 1
        let r = try await cli(["validate", file])
        #expect(r.status == 1, "\(r)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("\(file):\(line):\(column): error: unknown step 'agregate'"), "\(r.stderr)")
        #expect(r.stderr.contains("did you mean 'aggregate'?"), "\(r.stderr)")
    }

    @Test("validate: the repository's topologies.yaml is valid with every registered operator")
    func validateShipped() async throws {
        let r = try await cli(["validate", "\(repositoryRoot)/topologies.yaml"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains(": OK ("))
    }

    @Test("describe --format mermaid prints a flowchart with the store's changelog topic")
    func describeMermaid() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let file = try dir.write("good.yaml", Self.goodYAML)
        let r = try await cli(["describe", file, "--format", "mermaid"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.hasPrefix("flowchart"))
        #expect(r.stdout.contains("count-app-clicks-per-user-changelog"))
    }

    @Test("describe (text) says which rekeys combine before the repartition: a count after a rekey does, unless switched off, under exactly_once, or with a ttl on the aggregate")
    func describeCombining() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let yaml = """
            application.id: shop
            defaults: { processing.guarantee: GUARANTEE, combine.before.repartition: SWITCH }
            topologies:
              - name: per-category
                source: { topics: [orders], key: user }
                steps:
                  - rekey: { field: category }
                  - aggregate: { store: category-counts, aggregator: count }
              - name: recent
                source: { topics: [views] }
                steps:
                  - rekey: { field: user }
                  - aggregate: { store: recent-views, aggregator: count, ttl: 1h }
            """
        let said = "combined before the repartition"
        for (guarantee, on, combines) in [("at_least_once", "true", true), ("at_least_once", "false", false), ("exactly_once", "true", false)] {
            let file = try dir.write("\(guarantee)-\(on).yaml", yaml.replacingOccurrences(of: "GUARANTEE", with: guarantee).replacingOccurrences(of: "SWITCH", with: on))
            let r = try await cli(["describe", file])
            #expect(r.status == 0, "\(r)")
            let perCategory = r.stdout.components(separatedBy: "pipeline recent")[0]
            #expect(perCategory.contains(said) == combines, "\(guarantee), combine \(on): \(r.stdout)")
            // A ttl on the aggregate: never combined.
            #expect(!r.stdout.components(separatedBy: "pipeline recent")[1].contains(said), "\(r.stdout)")
        }
    }

    @Test("describe (text) names the changelog topic of every store")
    func describeText() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let file = try dir.write("good.yaml", Self.goodYAML)
        let r = try await cli(["describe", file])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("store clicks-per-user -> changelog topic count-app-clicks-per-user-changelog"), "\(r.stdout)")
    }

    @Test("run: an invalid Redis URL ends the run with exit 1 and a one-line reason")
    func runFailsWithReason() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let file = try dir.write("good.yaml", Self.goodYAML)
        let r = try await cli(["run", "--config", file, "--stop-at-end", "--redis-url", "http://nowhere", "--state-dir", dir.file("state")])
        #expect(r.status == 1, "\(r)")
        let reason = r.stderr.split(separator: "\n").filter { $0.hasPrefix("stream-engine: ") }
        #expect(reason.count == 1, "\(r.stderr)")
        #expect(reason.first?.contains("Redis URL http://nowhere") == true, "\(r.stderr)")
    }

    @Test("run with no Kafka configured starts an embedded cluster, prints its bootstrap list, and stops gracefully with exit 0 on SIGTERM")
    func runEmbeddedStopsOnSigterm() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let yaml = Self.goodYAML.replacingOccurrences(of: #"      - redis: { key: "clicks:{key}", mode: hash, fields: { count: count } }"#, with: "")
        let file = try dir.write("no-redis.yaml", yaml)
        let run = try CLIProcess(["run", "--config", file, "--state-dir", dir.file("state")])
        defer { run.terminate() }
        let started = try await run.waitForOutput { _, err in err.contains("running 1 pipelines") }
        #expect(started, "\(run.outputSoFar)")
        run.signal(SIGTERM)
        let r = try await run.wait(timeout: .seconds(60))
        #expect(r.status == 0, "\(r)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("embedded Kafka cluster (3 brokers): 127.0.0.1:") == true, "\(r.stdout)")
        #expect(lines.last?.hasPrefix("stream-engine: 0 records processed, 0 dead-lettered") == true, "\(r.stdout)")
    }

    @Test("usage errors exit 2 with the usage on stderr")
    func usageError() async throws {
        let r = try await cli(["state", "get", "only-a-store"])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("Usage: stream-engine state get"), "\(r.stderr)")
    }
}
