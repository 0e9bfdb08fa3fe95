import StreamEngine
import StreamEngineTesting
import Testing
import Topologies

/// Shop operators and pipelines without Kafka or Redis: a processor on a `ProcessorContext`
/// of its own, and `topologies.yaml`'s recently-viewed pipeline on the `TopologyTestDriver`.
@Suite("Shop operators and pipelines in memory")
struct InMemoryTopologyTests {
    typealias E = ShopEvents
    typealias View = ShopPipelineTests.RecentlyViewedPipelineTests

    /// Runs `pipelines` of `topologies.yaml` on a 4-partition driver over `records` (in this
    /// order, each to its partition) and `raw` values (partition 0, key "bad"), then commits.
    static func run(
        _ pipelines: [String], _ topic: String, _ records: [(key: String, value: JSONValue, partition: Int32)], raw: [String] = []
    ) async throws -> TopologyTestDriver {
        let driver = try TopologyTestDriver(config: try ShopHarness.config(pipelines), registry: shopOperatorRegistry(), partitions: 4)
        for r in records { try await driver.pipeInput(topic: topic, key: r.key, json: r.value, partition: r.partition) }
        for value in raw { try await driver.pipeInput(topic: topic, key: "bad", value: value, partition: 0) }
        try await driver.commit()
        return driver
    }

    static func record(_ value: JSONValue, key: String, topic: String, at: Int64) throws -> StreamRecord {
        StreamRecord(key: key, value: try #require(value.objectValue), timestamp: at, origin: RecordOrigin(topic: topic, partition: 0, offset: 0))
    }

    @Test("recent_guest_views on a ProcessorContext: a guest view updates the store and forwards Redis commands; the login forwards the merge and empties the guest")
    func guestViewsProcessor() throws {
        let factory = try #require(shopOperatorRegistry().processors["recent_guest_views"])
        var processor = try factory(["store": "recent-guests", "logins_topic": "logins", "max_items": 100, "max_age": "30d"])
        let store = KeyValueStore(name: "recent-guests", partition: 0)
        let context = ProcessorContext(stores: ["recent-guests": store])
        let guest = "g-7f3a9c2e5b1d4e8f"

        let view = View.view("p-A", guest: guest, At.day(0, 9), partition: 0)
        try processor.process(try Self.record(view.value, key: view.key, topic: E.userEventsTopic, at: At.day(0, 9)), context: context)
        #expect(context.forwarded.count == 1)
        let commands = context.forwarded.first?.value["guestCommands"]?.arrayValue ?? []
        // Added unless a merge at or after the view's time went through (the guard key holds its login time).
        #expect(commands.first == ["ZADDIFNEWER", .string("recent:guest:\(guest)"), .string(String(At.day(0, 9))), "p-A", .string("recent:guest:\(guest):merged")])
        #expect(store.get(guest)?["items"]?["p-A"]?.intValue == At.day(0, 9))

        context.clearForwarded()
        let login = E.login(member: "u-7", guest: guest, at: At.day(0, 11))
        try processor.process(try Self.record(login, key: guest, topic: E.loginsTopic, at: At.day(0, 11)), context: context)
        let merge = try #require(context.forwarded.first?.value)
        #expect(merge["memberId"]?.stringValue == "u-7")
        #expect(merge["products"]?["p-A"]?.intValue == At.day(0, 9))
        #expect(store.get(guest)?["items"]?.objectValue?.isEmpty ?? true, "the guest's views went to the member")
    }

    @Test("recently-viewed on the driver: the login merge moves the guest's views to the member (later time wins) and deletes the guest key")
    func loginMergeInMemory() async throws {
        let driver = try TopologyTestDriver(
            config: try ShopHarness.config(["recently-viewed"]), registry: shopOperatorRegistry(), partitions: 4)
        let guest = "g-7f3a9c2e5b1d4e8f"
        for v in [
            View.view("p-A", member: "u-7", At.day(0, 10), partition: 1),
            View.view("p-B", member: "u-7", At.day(0, 10, 5), partition: 1),
            View.view("p-A", guest: guest, At.day(0, 9), partition: 1),
            View.view("p-B", guest: guest, At.day(0, 10, 30), partition: 1),
        ] {
            try await driver.pipeInput(topic: E.userEventsTopic, key: v.key, json: v.value, partition: v.partition)
        }
        try await driver.commit()
        #expect(driver.redis.zrangeWithScores("recent:guest:\(guest)").map(\.member) == ["p-A", "p-B"])

        try await driver.pipeInput(topic: E.loginsTopic, key: guest, json: E.login(member: "u-7", guest: guest, at: At.day(0, 11)), partition: 1)
        try await driver.commit()
        #expect(driver.redis.zrangeWithScores("recent:member:u-7").map { "\($0.member)@\(Int64($0.score))" } == [
            "p-A@\(At.day(0, 10))",  // the member's 10:00 beats the guest's 09:00
            "p-B@\(At.day(0, 10, 30))",  // the guest's 10:30 beats the member's 10:05
        ])
        #expect(driver.redis.zrangeWithScores("recent:guest:\(guest)").isEmpty, "the guest key is gone")
        let thirtyDays: Int64 = 30 * 24 * 3_600_000
        #expect(driver.redis.ttlMillis("recent:member:u-7") == thirtyDays)
        #expect(driver.deadLetters.isEmpty)
    }
}
