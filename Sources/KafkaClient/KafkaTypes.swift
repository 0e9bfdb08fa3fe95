/// A topic and a partition.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    public var description: String { "\(topic)[\(partition)]" }
}

/// A topic, a partition and an offset (the next offset to read, for commits).
public struct TopicPartitionOffset: Hashable, Sendable, CustomStringConvertible {
    public var topicPartition: TopicPartition
    public var offset: Int64
    /// Commit metadata stored with the offset by the group coordinator (e.g. a task's stream time).
    public var metadata: String?
    public init(_ topic: String, _ partition: Int32, _ offset: Int64, metadata: String? = nil) {
        self.topicPartition = TopicPartition(topic, partition)
        self.offset = offset
        self.metadata = metadata
    }
    public init(_ tp: TopicPartition, _ offset: Int64, metadata: String? = nil) {
        self.topicPartition = tp
        self.offset = offset
        self.metadata = metadata
    }
    public var topic: String { topicPartition.topic }
    public var partition: Int32 { topicPartition.partition }
    public var description: String { "\(topicPartition)@\(offset)" }
}

/// Special offsets understood by librdkafka.
public enum KafkaOffset {
    public static let beginning: Int64 = -2
    public static let end: Int64 = -1
    public static let stored: Int64 = -1000
    public static let invalid: Int64 = -1001
}

/// A record header: a name and an optional binary value.
public struct KafkaHeader: Hashable, Sendable {
    public var name: String
    public var value: [UInt8]?
    public init(_ name: String, _ value: [UInt8]?) {
        self.name = name
        self.value = value
    }
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = Array(value.utf8)
    }
    public var stringValue: String? { value.map { String(decoding: $0, as: UTF8.self) } }
}

/// A record to produce.
public struct ProducerRecord: Sendable {
    public var topic: String
    /// An explicit partition, or `nil` to let the configured partitioner choose by key.
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [KafkaHeader]
    /// Timestamp in epoch milliseconds, or `nil` for the time of production.
    public var timestamp: Int64?

    public init(topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?, headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }
}

/// A consumed record.
///
/// The reference-counted parts (topic, key, value, headers) live in one immutable object:
/// a message is copied several times on its way through a consumer's caller (a batch, a
/// reader's input, a queue), and a copy then costs one reference count instead of four.
/// Setting one of them makes a new object (copy on write).
public struct KafkaMessage: Sendable {
    private final class Payload: Sendable {
        let topic: String
        let key: [UInt8]?
        let value: [UInt8]?
        let headers: [KafkaHeader]

        init(topic: String, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader]) {
            self.topic = topic
            self.key = key
            self.value = value
            self.headers = headers
        }
    }

    private var payload: Payload
    public var partition: Int32
    public var offset: Int64
    /// Epoch milliseconds, if the record has a timestamp.
    public var timestamp: Int64?

    public var topic: String {
        get { payload.topic }
        set { payload = Payload(topic: newValue, key: payload.key, value: payload.value, headers: payload.headers) }
    }
    public var key: [UInt8]? {
        get { payload.key }
        set { payload = Payload(topic: payload.topic, key: newValue, value: payload.value, headers: payload.headers) }
    }
    public var value: [UInt8]? {
        get { payload.value }
        set { payload = Payload(topic: payload.topic, key: payload.key, value: newValue, headers: payload.headers) }
    }
    public var headers: [KafkaHeader] {
        get { payload.headers }
        set { payload = Payload(topic: payload.topic, key: payload.key, value: payload.value, headers: newValue) }
    }

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        payload = Payload(topic: topic, key: key, value: value, headers: headers)
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
    }

    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
    public func header(_ name: String) -> KafkaHeader? { payload.headers.last { $0.name == name } }
}

/// Where a produced record landed.
public struct DeliveryReport: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}

/// Low and high watermark of a partition.
public struct Watermarks: Sendable, Hashable {
    public var low: Int64
    public var high: Int64
}
