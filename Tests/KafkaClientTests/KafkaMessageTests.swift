import Foundation
import Testing
@testable import KafkaClient

@Suite("A consumed message's key and value")
struct KafkaMessageTests {
    @Test("absent, empty and present keys and values read back as given, in place and as copies, whichever way round")
    func keyAndValueShapes() {
        let shapes: [[UInt8]?] = [nil, [], bytes("k"), bytes(String(repeating: "x", count: 300))]
        for key in shapes {
            for value in shapes {
                let m = KafkaMessage(topic: "t", partition: 1, offset: 7, key: key, value: value)
                #expect(m.key == key && m.value == value, "key \(String(describing: key?.count)), value \(String(describing: value?.count))")
                #expect(m.withUnsafeKey { Array($0) } == key)
                #expect(m.withUnsafeValue { Array($0) } == value)
                #expect(m.hasValue == (value != nil))
                let copied = key.map { k in k.withUnsafeBytes { kb in
                    value.map { v in v.withUnsafeBytes { vb in KafkaMessage(topic: "t", partition: 1, offset: 7, copyingKey: kb, value: vb) } }
                        ?? KafkaMessage(topic: "t", partition: 1, offset: 7, copyingKey: kb, value: nil)
                } } ?? value.map { v in v.withUnsafeBytes { vb in KafkaMessage(topic: "t", partition: 1, offset: 7, copyingKey: nil, value: vb) } }
                    ?? KafkaMessage(topic: "t", partition: 1, offset: 7, copyingKey: nil, value: nil)
                #expect(copied.key == key && copied.value == value)
            }
        }
    }

    @Test("setting the value keeps the key, setting the key keeps the value, and the copy it came from is unchanged")
    func setters() {
        let original = KafkaMessage(topic: "t", partition: 0, offset: 1, key: bytes("user-1"), value: bytes(#"{"a":1}"#), headers: [KafkaHeader("h", "v")])
        var m = original
        m.value = bytes("{}")
        #expect(text(m.key) == "user-1" && text(m.value) == "{}")
        m.key = nil
        #expect(m.key == nil && text(m.value) == "{}")
        m.value = nil
        #expect(m.key == nil && m.value == nil && !m.hasValue)
        #expect(m.header("h")?.stringValue == "v")
        #expect(text(original.key) == "user-1" && text(original.value) == #"{"a":1}"#)
    }

    @Test("setting any one part (topic, headers, key, value) keeps every other, for absent, empty and present keys and values")
    func eachSetterKeepsTheRest() {
        let shapes: [[UInt8]?] = [nil, [], bytes("k"), bytes(String(repeating: "x", count: 300))]
        for key in shapes {
            for value in shapes {
                let m = KafkaMessage(topic: "t", partition: 2, offset: 9, key: key, value: value, headers: [KafkaHeader("h", "v")], timestamp: 5)
                var t = m
                t.topic = "u"
                #expect(t.topic == "u" && t.key == key && t.value == value && t.header("h")?.stringValue == "v")
                var h = m
                h.headers = [KafkaHeader("g", "w")]
                #expect(h.topic == "t" && h.key == key && h.value == value && h.header("h") == nil && h.header("g")?.stringValue == "w")
                for other in shapes {
                    var k = m
                    k.key = other
                    #expect(k.key == other && k.value == value && k.topic == "t" && k.header("h")?.stringValue == "v")
                    var v = m
                    v.value = other
                    #expect(v.key == key && v.value == other && v.hasValue == (other != nil) && v.offset == 9 && v.timestamp == 5)
                }
                #expect(m.topic == "t" && m.key == key && m.value == value)
            }
        }
    }

    @Test("a record without a key and a tombstone come back from the broker without them; keyed records keep key and value apart")
    func consumedShapes() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("shapes", partitions: 1)
        let producer = try KafkaProducer(config: cluster.clientConfig, logger: testLogger)
        try await producer.send(ProducerRecord(topic: "shapes", key: nil, value: bytes("no key")))
        try await producer.send(ProducerRecord(topic: "shapes", key: bytes("gone"), value: nil))
        try await producer.send(ProducerRecord(topic: "shapes", key: bytes("k2"), value: bytes("v2")))
        try await producer.flush(timeout: .seconds(30))
        await producer.close()
        let consumer = try KafkaConsumer(config: cluster.clientConfig.merging(["group.id": "shapes"]) { $1 }, logger: testLogger)
        try consumer.subscribe(["shapes"])
        let messages = try await pollUntil(consumer) { all, _ in all.count >= 3 }
        await consumer.close()
        #expect(messages.count == 3)
        #expect(messages.map { text($0.key) } == [nil, "gone", "k2"])
        #expect(messages.map { text($0.value) } == ["no key", nil, "v2"])
        #expect(messages.map(\.hasValue) == [true, false, true])
    }
}
