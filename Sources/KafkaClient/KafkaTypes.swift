import ByteArrays

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
/// Its topic, headers and bytes live in one immutable object, the key's and the value's bytes
/// in one array in it (the key's, then the value's): two allocations per message, and a copy
/// of the message (a poll batch, each reading task's input, its queue) costs one reference
/// count. `key` and `value` hand out copies as arrays; readers on a hot path use
/// ``withUnsafeValue(_:)`` and ``withUnsafeKey(_:)``, which read them in place. Setting a
/// part makes a new object (copy on write).
public struct KafkaMessage: Sendable {
    @usableFromInline
    final class Payload: Sendable {
        let topic: String
        let headers: [KafkaHeader]
        /// The key's bytes, then the value's.
        @usableFromInline let bytes: [UInt8]
        /// The lengths of the key and the value in `bytes` (-1: absent).
        @usableFromInline let keyCount: Int
        @usableFromInline let valueCount: Int

        init(topic: String, headers: [KafkaHeader], bytes: [UInt8], keyCount: Int, valueCount: Int) {
            self.topic = topic
            self.headers = headers
            self.bytes = bytes
            self.keyCount = keyCount
            self.valueCount = valueCount
        }

        convenience init(topic: String, headers: [KafkaHeader], key: [UInt8]?, value: [UInt8]?) {
            let bytes: [UInt8]
            if let key, let value {
                bytes = key + value
            } else {
                bytes = key ?? value ?? []
            }
            self.init(topic: topic, headers: headers, bytes: bytes, keyCount: key?.count ?? -1, valueCount: value?.count ?? -1)
        }
    }

    @usableFromInline var payload: Payload
    public var partition: Int32
    public var offset: Int64
    /// Epoch milliseconds, if the record has a timestamp.
    public var timestamp: Int64?

    public var topic: String {
        get { payload.topic }
        set { payload = Payload(topic: newValue, headers: payload.headers, bytes: payload.bytes, keyCount: payload.keyCount, valueCount: payload.valueCount) }
    }
    public var headers: [KafkaHeader] {
        get { payload.headers }
        set { payload = Payload(topic: payload.topic, headers: newValue, bytes: payload.bytes, keyCount: payload.keyCount, valueCount: payload.valueCount) }
    }
    /// A copy of the key's bytes.
    public var key: [UInt8]? {
        get { withUnsafeKey { Array($0) } }
        set { payload = Payload(topic: payload.topic, headers: payload.headers, key: newValue, value: value) }
    }
    /// A copy of the value's bytes.
    public var value: [UInt8]? {
        get { withUnsafeValue { Array($0) } }
        set { payload = Payload(topic: payload.topic, headers: payload.headers, key: key, value: newValue) }
    }

    /// Whether the record has a value (a tombstone has none).
    @inlinable public var hasValue: Bool { payload.valueCount >= 0 }

    /// Calls `body` with the value's bytes, without copying them; `nil` (and `body` is not
    /// called) when the record has no value. The bytes are valid only inside `body`.
    @inlinable
    public func withUnsafeValue<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R? {
        let p = payload
        guard p.valueCount >= 0 else { return nil }
        let start = max(0, p.keyCount), n = p.valueCount
        return p.bytes.withUnsafeBytes { raw in body(UnsafeRawBufferPointer(start: raw.baseAddress.map { $0 + start }, count: n)) }
    }

    /// Calls `body` with the key's bytes, without copying them; `nil` when the record has no key.
    @inlinable
    public func withUnsafeKey<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R? {
        let p = payload
        guard p.keyCount >= 0 else { return nil }
        let n = p.keyCount
        return p.bytes.withUnsafeBytes { raw in body(UnsafeRawBufferPointer(start: raw.baseAddress, count: n)) }
    }

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        payload = Payload(topic: topic, headers: headers, key: key, value: value)
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
    }

    /// A message whose key and value are copied from `key` and `value` (`nil`: absent) into
    /// its one array.
    public init(
        topic: String, partition: Int32, offset: Int64, copyingKey key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
        headers: [KafkaHeader] = [], timestamp: Int64? = nil
    ) {
        let k = key?.count ?? -1, v = value?.count ?? -1
        let none = UnsafeRawBufferPointer(start: nil, count: 0)
        let bytes = Array(ConcatenatedBytes(key ?? none, value ?? none))
        payload = Payload(topic: topic, headers: headers, bytes: bytes, keyCount: k, valueCount: v)
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
