import Foundation
import KafkaClient
import Testing
@testable import StreamEngine
import StreamEngineTesting

@Suite("Engine: crash recovery, snapshots and rebalancing", .serialized)
struct RecoveryTests {
    static func yaml(_ guarantee: String) -> String {
        """
        application.id: crash-app
        defaults:
          processing.guarantee: \(guarantee)
          commit.interval.ms: 10
        topologies:
          - name: totals
            source:
              topics: [orders]
              key: user
              timestamp: ts
            steps:
              - aggregate: { store: totals-by-user, aggregator: sum, params: { field: amount } }
              - redis: { key: "total:{key}", mode: hash }
              - to: { topic: totals-out }
        """
    }

    /// 4,000 orders of 40 users over 4 partitions, and the expected total per user.
    static func orders() -> (records: [(key: String?, value: String)], totals: [String: Int]) {
        var totals: [String: Int] = [:]
        var records: [(key: String?, value: String)] = []
        for i in 0..<4000 {
            let user = "u\(i % 40)"
            let amount = 1 + (i * 37) % 11
            totals[user, default: 0] += amount
            records.append((user, #"{"user":"\#(user)","amount":\#(amount),"ts":"2024-12-14T12:00:00Z"}"#))
        }
        return (records, totals)
    }

    func crashThenRecover(guarantee: String, point: FaultInjection.Point) async throws {
        let h = try EngineTestHarness()
        try h.createTopic("orders", partitions: 4)
        let (records, totals) = Self.orders()
        try await h.produce("orders", records)
        let config = try h.config(Self.yaml(guarantee))

        await #expect(throws: SimulatedCrash.self) {
            try await h.runToEnd(config, batchSize: 50, fault: FaultInjection(commit: 2, point: point))
        }
        // The crash left partial results behind.
        var partial = 0
        for user in totals.keys { partial += try await h.hgetall("total:\(user)")["sum"].flatMap(Int.init) ?? 0 }
        #expect(partial < totals.values.reduce(0, +))

        let rt = try await h.runToEnd(config, batchSize: 150)
        #expect(rt.stats.processed > 0)
        for (user, total) in totals {
            #expect(try await h.hgetall("total:\(user)")["sum"] == String(total), "user \(user)")
        }
        // Every input record produced one output record; replayed ones carry the same
        // engine position headers, so de-duplicating on them gives each exactly once.
        let out = try await h.readJSON("totals-out")
        var seen: [String: (key: String, sum: Int)] = [:]
        for o in out {
            let pos = "\(o.message.header("se-up")?.stringValue ?? "")/\(o.message.header("se-seq")?.stringValue ?? "")"
            seen[pos] = (o.key, o.value["sum"]?.intValue.map(Int.init) ?? -1)
        }
        #expect(seen.count == records.count)
        var finalPerUser: [String: Int] = [:]
        for (_, v) in seen { finalPerUser[v.key] = max(finalPerUser[v.key] ?? 0, v.sum) }
        #expect(finalPerUser == totals)
    }

    @Test("exactly_once configured on the embedded cluster (no Kafka transactions there: the non-transactional commit path with changelog offset tags and the Redis fence): crash after Redis was written but before offsets were committed; the rerun ends exact")
    func exactlyOnceConfigOnEmbeddedClusterCrashAfterRedisWrite() async throws {
        try await crashThenRecover(guarantee: "exactly_once", point: .afterRedisWrite)
    }

    @Test("exactly_once configured on the embedded cluster (no Kafka transactions there: the non-transactional commit path with changelog offset tags and the Redis fence): crash after changelog and outputs were flushed, before Redis; the rerun ends exact")
    func exactlyOnceConfigOnEmbeddedClusterCrashAfterFlush() async throws {
        try await crashThenRecover(guarantee: "exactly_once", point: .afterKafkaFlush)
    }

    @Test("at_least_once: a crash loses nothing and, without a repartition step, Redis still ends exact")
    func atLeastOnceCrash() async throws {
        try await crashThenRecover(guarantee: "at_least_once", point: .afterRedisWrite)
    }

    /// A sum after a rekey: the upstream tasks combine (one partial per user and commit).
    static let combinedYAML = """
        application.id: combine-app
        defaults:
          processing.guarantee: at_least_once
          commit.interval.ms: 10
        topologies:
          - name: totals
            source:
              topics: [orders]
              key: user
              timestamp: ts
            steps:
              - filter: [{ field: amount, op: gt, value: 0 }]
              - rekey: { field: user }
              - aggregate: { store: totals-by-user, aggregator: sum, params: { field: amount } }
              - redis: { key: "total:{key}", mode: hash }
        """

    @Test(
        "at_least_once, a sum after a rekey (partials combined before the repartition): a crash before or after the offset commit that declares an epoch, then a rerun, ends exact; the repartition topic holds fewer records than the input",
        arguments: [(5, FaultInjection.Point.afterOffsetCommit), (5, .afterKafkaFlush), (6, .afterOffsetCommit), (6, .afterRedisWrite)])
    func combinedBeforeRepartitionCrash(commit: Int, point: FaultInjection.Point) async throws {
        try await crashCombinedThenRecover(commit: commit, point: point, rerunCombines: true)
    }

    @Test(
        "A crash that leaves an epoch declared (its partials not yet or partly applied), then reruns with combine.before.repartition: false: that epoch still goes out as partials, later records one by one; exact",
        arguments: [FaultInjection.Point.afterOffsetCommit, .afterKafkaFlush])
    func combinedThenSwitchedOff(point: FaultInjection.Point) async throws {
        try await crashCombinedThenRecover(commit: 5, point: point, rerunCombines: false)
    }

    func crashCombinedThenRecover(commit: Int, point: FaultInjection.Point, rerunCombines: Bool) async throws {
        let h = try EngineTestHarness()
        try h.createTopic("orders", partitions: 4)
        let (records, initialTotals) = Self.orders()
        try await h.produce("orders", records)
        let config = try h.config(Self.combinedYAML)
        await #expect(throws: SimulatedCrash.self) {
            try await h.runToEnd(config, batchSize: 50, fault: FaultInjection(commit: commit, point: point))
        }
        var partial = 0
        for user in initialTotals.keys { partial += try await h.hgetall("total:\(user)")["sum"].flatMap(Int.init) ?? 0 }
        #expect(partial < initialTotals.values.reduce(0, +))
        // Epochs were declared and their partials sent before the crash (the commits before it had records).
        let repartition = config.repartitionTopic(pipeline: "totals")
        func partialsSent() async throws -> Int {
            try await h.readAll(repartition).count { RepartitionStamp.unframe($0.value)?.stamp.partial == true }
        }
        let sentBeforeRerun = try await partialsSent()
        #expect(sentBeforeRerun > 0)
        // Whether the crash left an epoch declared (in a committed offset's metadata): at
        // `.afterOffsetCommit` the crashing commit may be one that only confirmed partials sent
        // earlier (the input was all processed by then), and then nothing is left to replay.
        let leftDeclared = try await declaredEpochs(h, config: config, partitions: 4) > 0
        // More orders arrive after the crash, beyond any epoch it left declared.
        var totals = initialTotals
        var more: [(key: String?, value: String)] = []
        for i in 0..<400 {
            let user = "u\(i % 40)"
            totals[user, default: 0] += 2
            more.append((user, #"{"user":"\#(user)","amount":2,"ts":"2024-12-14T13:00:00Z"}"#))
        }
        try await h.produce("orders", more)
        // A second crash in the rerun, at the same point of its first commit with work.
        let rerun = rerunCombines ? config : try h.config(Self.combinedYAML.replacingOccurrences(
            of: "processing.guarantee: at_least_once", with: "processing.guarantee: at_least_once\n  combine.before.repartition: false"))
        #expect(rerun.combineBeforeRepartition == rerunCombines)
        await #expect(throws: SimulatedCrash.self) {
            try await h.runToEnd(rerun, batchSize: 70, fault: FaultInjection(commit: 1, point: point))
        }
        try await h.runToEnd(rerun, batchSize: 150)
        for (user, total) in totals {
            #expect(try await h.hgetall("total:\(user)")["sum"] == String(total), "user \(user)")
        }
        let sent = try await h.readAll(repartition).compactMap { RepartitionStamp.unframe($0.value)?.stamp }
        // The reruns sent partials again: at least the epoch the crash left declared.
        if leftDeclared || rerunCombines {
            #expect(sent.count { $0.partial } > sentBeforeRerun, "an epoch was left declared: \(leftDeclared)")
        } else {
            #expect(sent.count { $0.partial } == sentBeforeRerun, "no epoch was left declared: nothing to send again as partials")
        }
        if rerunCombines {
            #expect(sent.allSatisfy(\.partial) && sent.count < records.count + more.count, "\(sent.count) repartition records for \(records.count + more.count) input records")
        } else {
            #expect(sent.contains { !$0.partial }, "records one by one once the declared epoch went out")
        }
    }

    /// How many of the source's partitions have a combiner epoch declared in the group's
    /// committed metadata (a reader's `>end`, see `StreamTask.Combiner`).
    func declaredEpochs(_ h: EngineTestHarness, config: StreamConfig, partitions: Int32) async throws -> Int {
        let consumer = try KafkaConsumer(config: h.kafka.clientConfig.merging(["group.id": config.applicationId]) { $1 }, logger: h.logger)
        let committed = try await consumer.committedWithMetadata((0..<partitions).map { TopicPartition("orders", $0) })
        await consumer.close()
        return committed.values.count { CommittedPositions.readers($0.metadata).values.contains { $0.pendingEnd != nil } }
    }

    @Test("Restore from snapshot + changelog tail equals a full changelog replay; a corrupt snapshot is detected and replaced by a replay")
    func snapshotRestore() async throws {
        let h = try EngineTestHarness()
        try h.createTopic("orders", partitions: 4)
        let (records, totals) = Self.orders()
        try await h.produce("orders", Array(records[..<2000]))
        let config = try h.config(Self.yaml("at_least_once"))
        try await h.runToEnd(config)

        // Keep the first run's snapshots aside, then process the rest (the changelog grows past them).
        let old = FileManager.default.temporaryDirectory.appendingPathComponent("se-old-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: h.stateDir, toPath: old)
        defer { try? FileManager.default.removeItem(atPath: old) }
        try await h.produce("orders", Array(records[2000...]))
        try await h.runToEnd(config)
        for (user, total) in totals {
            #expect(try await h.hgetall("total:\(user)")["sum"] == String(total))
        }

        let restorer = StoreRestorer(kafkaConfig: h.kafka.clientConfig, logger: h.logger)
        let changelog = config.changelogTopic(store: "totals-by-user")
        var restoredKeys = 0
        for p in Int32(0)..<4 {
            let path = StoreSnapshot.path(stateDir: old, applicationId: "crash-app", store: "totals-by-user", partition: p)
            let fromSnapshot = try await restorer.restore(store: "totals-by-user", partition: p, changelogTopic: changelog, snapshotPath: path, committed: nil)
            let fromChangelog = try await restorer.restore(store: "totals-by-user", partition: p, changelogTopic: changelog, snapshotPath: nil, committed: nil)
            #expect(fromSnapshot.report.fromSnapshot)
            #expect(fromSnapshot.report.changelogRecords < fromChangelog.report.changelogRecords, "only the tail was replayed")
            #expect(fromSnapshot.entries == fromChangelog.entries)
            restoredKeys += fromChangelog.entries.count

            // Corrupt the snapshot: detected, and the store comes from the changelog instead.
            var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
            bytes[bytes.count / 2] ^= 0xFF
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            let afterCorruption = try await restorer.restore(store: "totals-by-user", partition: p, changelogTopic: changelog, snapshotPath: path, committed: nil)
            #expect(!afterCorruption.report.fromSnapshot)
            #expect(afterCorruption.report.snapshotProblem?.contains(path) == true)
            #expect(afterCorruption.entries == fromChangelog.entries)
        }
        #expect(restoredKeys == totals.count)
        let sums = try await h.readJSON("totals-out").count
        #expect(sums == records.count)
    }

    @Test("Two instances split the partitions; one stops, the other restores its stores and the results are exact")
    func twoInstances() async throws {
        let h = try EngineTestHarness(brokers: 3)
        try h.createTopic("orders", partitions: 4)
        var (records, totals) = Self.orders()
        // More input so that both instances are busy when one stops.
        for i in 4000..<40000 {
            let user = "u\(i % 40)"
            totals[user, default: 0] += 2
            records.append((user, #"{"user":"\#(user)","amount":2,"ts":"2024-12-14T12:00:00Z"}"#))
        }
        let config = try h.config(Self.yaml("exactly_once"))
        let a = h.runtime(config, stopAtEnd: false, stateDir: h.stateDir + "/a", batchSize: 100)
        let b = h.runtime(config, stopAtEnd: false, stateDir: h.stateDir + "/b", batchSize: 100)
        async let runA: Void = a.run()
        async let runB: Void = b.run()
        // The input is produced once the group has settled on both instances (two partitions
        // each, tasks running): produced before, the first instance to join could finish it
        // alone before the second's join completes, a race a loaded machine loses.
        func owned(_ rt: StreamRuntime) -> String {
            let s = rt.queries.assignment
            return "joined \(s.joined), partitions \(s.partitions.map(\.partition).sorted()), pending \(s.pending.count)"
        }
        func split() -> Bool {
            [a, b].allSatisfy { $0.queries.isReady && $0.queries.assignment.partitions.count == 2 }
        }
        var deadline = ContinuousClock.now + .seconds(60)
        while !split(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try #require(split(), "both instances own two partitions (a: \(owned(a)); b: \(owned(b)))")
        try await h.produce("orders", records)
        deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if b.stats.processed > 500, a.stats.processed > 500 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(b.stats.processed > 0 && a.stats.processed > 0, "both instances process (a: \(a.stats), \(owned(a)); b: \(b.stats), \(owned(b)))")
        b.stop()
        try await runB
        let processedByB = b.stats.processed
        // The first instance takes over the second's partitions (restoring their stores from
        // the changelogs) and finishes the input. (The totals can be complete before the takeover
        // is: the second may have processed its whole share before it stopped.)
        deadline = ContinuousClock.now + .seconds(90)
        var got: [String: String] = [:]
        while ContinuousClock.now < deadline {
            got = [:]
            for user in totals.keys { got[user] = try await h.hgetall("total:\(user)")["sum"] }
            if got == totals.mapValues(String.init), a.queries.assignment.partitions.count == 4 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(a.queries.assignment.partitions.count == 4, "a took over b's partitions: \(owned(a))")
        a.stop()
        try await runA
        #expect(processedByB < records.count && a.stats.processed + processedByB >= records.count,
                "a: \(a.stats), b processed \(processedByB) of \(records.count)")
        for (user, total) in totals {
            #expect(got[user] == String(total), "user \(user)")
        }
    }
}
