import Foundation
import Testing
@testable import KafkaClient

/// The embedded cluster's group coordinator: a JoinGroup round ends when every member
/// has rejoined (`group.initial.rebalance.delay.ms` 0 by default), not on the mock's
/// hard-coded 3 s (first join) or `session.timeout.ms` − 1 s (later rounds).
@Suite("The embedded cluster's group coordinator")
struct GroupCoordinatorTests {
    /// Subscribes a member of `group` and returns the seconds from subscribing to its first
    /// assignment, with the member (still polling, so that it keeps its membership).
    private func join(_ cluster: EmbeddedKafkaCluster, group: String, session: Int = 6000) async throws -> (seconds: Double, member: Polling) {
        let config = cluster.clientConfig.merging([
            "group.id": group, "heartbeat.interval.ms": "100", "session.timeout.ms": "\(session)",
            "partition.assignment.strategy": "cooperative-sticky",
        ]) { $1 }
        let start = ContinuousClock.now
        let member = try GroupMember(config)
        let polling = Polling(member: member, task: Task { try await member.run() })
        let deadline = start + .seconds(30)
        while ContinuousClock.now < deadline {
            let assigned = member.box.events.withLock { events in
                events.contains { if case .assigned(let p) = $0 { !p.isEmpty } else { false } }
            }
            if assigned {
                let d = ContinuousClock.now - start
                return (Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18, polling)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("no assignment within 30 s")
        return (30, polling)
    }

    /// A member and the task polling it.
    struct Polling {
        let member: GroupMember
        let task: Task<Void, any Error>
    }

    private func stop(_ members: [Polling]) async {
        for m in members { m.member.box.running.store(false, ordering: .releasing) }
        for m in members {
            _ = await m.task.result
            await m.member.consumer.close()
        }
    }

    // Wall-clock bounds here are lower bounds only (a loaded machine makes clients slower, never
    // faster); that a round ended early is read from the coordinator: it counts only the rounds it
    // completed while the mock's own timer was still pending.
    @Test("A first member's round and the round a second member starts end as soon as every member joined, before the mock's own timer; the mock as shipped takes its 3 s")
    func joinRoundsEndWhenEveryMemberRejoined() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("events", partitions: 4)
        let first = try await join(cluster, group: "fast")
        #expect(try #require(cluster.earlyCompletedJoinRounds) >= 1, "first join took \(first.seconds) s")
        // The second member's join puts the group into a new round: the first member rejoins
        // on its next heartbeat (100 ms), and the round ends then (as shipped: 6 s − 1 s later).
        let second = try await join(cluster, group: "fast")
        #expect(try #require(cluster.earlyCompletedJoinRounds) >= 2, "second join took \(second.seconds) s")
        await stop([first.member, second.member])
        await cluster.close()

        let shipped = try EmbeddedKafkaCluster(brokers: 1, groupInitialRebalanceDelayMs: nil, logger: testLogger)
        try shipped.createTopic("events", partitions: 4)
        let slow = try await join(shipped, group: "slow")
        #expect(slow.seconds >= 2.9, "the mock as shipped elected after \(slow.seconds) s")
        #expect(shipped.earlyCompletedJoinRounds == nil)
        await stop([slow.member])
        await shipped.close()
    }

    @Test("An initial delay holds an empty group's first round that long, and it ends before the mock's own 3 s")
    func initialDelay() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, groupInitialRebalanceDelayMs: 1500, logger: testLogger)
        try cluster.createTopic("events", partitions: 2)
        let member = try await join(cluster, group: "delayed")
        #expect(member.seconds >= 1.5, "first join took \(member.seconds) s")
        #expect(try #require(cluster.earlyCompletedJoinRounds) >= 1, "ended by the delay, not the mock's 3 s (\(member.seconds) s)")
        await stop([member.member])
        await cluster.close()
        #expect(throws: KafkaError.self) { try EmbeddedKafkaCluster(brokers: 1, groupInitialRebalanceDelayMs: 3001, logger: testLogger) }
    }
}
