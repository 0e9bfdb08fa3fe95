import StreamEngine
import StreamEngineTesting
import Testing
import Topologies

extension InMemoryTopologyTests {
    @Suite("behaviour pipeline on the TopologyTestDriver: behaviour:{viewerId}")
    struct BehaviourPipelineTests {
        typealias E = ShopEvents

        @Test("Counts per type and sessions: a 31-minute gap splits, 29 minutes joins, a late event bridges two sessions")
        func behaviour() async throws {
            let driver = try TopologyTestDriver(
                config: try ShopHarness.config(["behaviour"]), registry: shopOperatorRegistry(), partitions: 4)
            func event(_ id: String, _ type: String, member: String? = nil, guest: String? = nil, _ at: Int64, partition: Int32) -> (String, JSONValue, Int32) {
                (E.userEventKey(member: member, guest: guest), E.userEvent(id: id, type: type, member: member, guest: guest, product: "p-1", at: at), partition)
            }
            for (key, value, partition) in [
                // Member u-1: 10:00 and 10:10 form a session; 10:41 is 31 minutes later: a second one,
                // which 11:10 (29 minutes later) and 11:20 join.
                event("e-1", "view", member: "u-1", At.day(0, 10), partition: 2),
                event("e-2", "click", member: "u-1", At.day(0, 10, 10), partition: 2),
                event("e-3", "view", member: "u-1", At.day(0, 10, 41), partition: 2),
                event("e-4", "add_to_cart", member: "u-1", At.day(0, 11, 10), partition: 2),
                event("e-5", "search", member: "u-1", At.day(0, 11, 20), partition: 2),
                // Guest g-long-1: 09:00 and 09:58 are two sessions until 09:29 arrives (29 minutes from each).
                event("e-6", "view", guest: "g-long-1", At.day(0, 9), partition: 1),
                event("e-7", "view", guest: "g-long-1", At.day(0, 9, 58), partition: 1),
                event("e-8", "click", guest: "g-long-1", At.day(0, 9, 29), partition: 1),
                // Guest g-long-2: three sessions, the last still open.
                event("e-9", "view", guest: "g-long-2", At.day(0, 8), partition: 3),
                event("e-10", "view", guest: "g-long-2", At.day(0, 9), partition: 3),
                event("e-11", "view", guest: "g-long-2", At.day(1, 9), partition: 3),
            ] {
                try await driver.pipeInput(topic: E.userEventsTopic, key: key, json: value, partition: partition)
            }
            for bad in [
                #"{"eventId":"e-x","type":"purchase","memberId":"u-1","guestId":null,"timestamp":"2024-12-14T12:00:00Z"}"#,
                #"{"eventId":"e-y","type":"view","memberId":null,"guestId":null,"timestamp":"2024-12-14T12:00:00Z"}"#,
                #"{"eventId":"e-z","type":"view","memberId":"u-1","timestamp":17}"#,
            ] {
                try await driver.pipeInput(topic: E.userEventsTopic, key: "bad", value: bad, partition: 0)
            }
            try await driver.commit()

            let behaviourU1 = driver.redis.hgetall("behaviour:u-1")
            #expect(behaviourU1 == [
                "views": "2", "clicks": "1", "addToCarts": "1", "searches": "1", "sessions": "2", "lastSeenAt": "2024-12-14T11:20:00Z",
            ])
            let behaviourGLong1 = driver.redis.hgetall("behaviour:g-long-1")
            #expect(behaviourGLong1 == [
                "views": "2", "clicks": "1", "addToCarts": "0", "searches": "0", "sessions": "1", "lastSeenAt": "2024-12-14T09:58:00Z",
            ])
            let behaviourGLong2 = driver.redis.hgetall("behaviour:g-long-2")
            #expect(behaviourGLong2 == [
                "views": "3", "clicks": "0", "addToCarts": "0", "searches": "0", "sessions": "3", "lastSeenAt": "2024-12-15T09:00:00Z",
            ])
            let behaviourAllKeys = driver.redis.keys.filter { $0.hasPrefix("behaviour:") }.sorted()
            #expect(behaviourAllKeys == ["behaviour:g-long-1", "behaviour:g-long-2", "behaviour:u-1"])
            // An unknown type, no viewer id, and a numeric timestamp.
            #expect(await driver.counts().deadLettered == 3)
        }
    }
}
