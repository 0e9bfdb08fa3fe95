
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
/// Its topic, headers and bytes live in one immutable object: the topic, the headers and the
/// lengths ahead of the key's and the value's bytes (the key's, then the value's) in a single
/// allocation per message, so that the first touch of a message brings its first bytes into
/// the cache with it. A copy of the message (a poll batch, each reading task's input, its
/// queue) costs one reference count. `key` and `value` hand out copies as arrays; readers on a
/// hot path use ``withUnsafeValue(_:)`` and ``withUnsafeKey(_:)``, which read them in place.
/// Setting a part makes a new object (copy on write).
public struct KafkaMessage: Sendable {
    /// What a ``Payload`` holds ahead of its bytes.
    @usableFromInline
    struct PayloadHeader {
        let topic: String
        let headers: [KafkaHeader]
        /// The lengths of the key and the value in the bytes (-1: absent).
        @usableFromInline let keyCount: Int
        @usableFromInline let valueCount: Int
    }

    /// The header and the bytes in one allocation (tail-allocated), immutable once made.
    @usableFromInline
    final class Payload: ManagedBuffer<PayloadHeader, UInt8> {
        static func make(topic: String, headers: [KafkaHeader], key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?) -> Payload {
            let k = key?.count ?? -1, v = value?.count ?? -1
            let buffer = Payload.create(minimumCapacity: max(0, k) + max(0, v)) { _ in
                PayloadHeader(topic: topic, headers: headers, keyCount: k, valueCount: v)
            }
            buffer.withUnsafeMutablePointerToElements { elements in
                let base = UnsafeMutableRawPointer(elements)
                if let key, let from = key.baseAddress, k > 0 { base.copyMemory(from: from, byteCount: k) }
                if let value, let from = value.baseAddress, v > 0 { (base + max(0, k)).copyMemory(from: from, byteCount: v) }
            }
            return unsafeDowncast(buffer, to: Payload.self)
        }

        static func make(topic: String, headers: [KafkaHeader], key: [UInt8]?, value: [UInt8]?) -> Payload {
            bytes(.some(key), else: nil) { k in bytes(.some(value), else: nil) { v in make(topic: topic, headers: headers, key: k, value: v) } }
        }

        /// Calls `body` with the bytes of `new` in place (`.some(nil)`: absent), or with `old` when `new` is `.none`.
        private static func bytes(_ new: [UInt8]??, else old: UnsafeRawBufferPointer?, _ body: (UnsafeRawBufferPointer?) -> Payload) -> Payload {
            switch new {
            case .none: body(old)
            case .some(nil): body(nil)
            case .some(let a?): a.withUnsafeBytes { body($0) }
            }
        }

        var topic: String { withUnsafeMutablePointerToHeader { $0.pointee.topic } }
        var headers: [KafkaHeader] { withUnsafeMutablePointerToHeader { $0.pointee.headers } }
        @inlinable var keyCount: Int { withUnsafeMutablePointerToHeader { $0.pointee.keyCount } }
        @inlinable var valueCount: Int { withUnsafeMutablePointerToHeader { $0.pointee.valueCount } }

        /// Calls `body` with `count` bytes from `offset`, in place.
        @inlinable func withBytes<R>(from offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
            withUnsafeMutablePointerToElements { body(UnsafeRawBufferPointer(start: UnsafeRawPointer($0) + offset, count: count)) }
        }

        /// A payload like this one but for the parts given (for `key` and `value`, `.some(nil)`
        /// makes the part absent); the parts kept are copied from this one's bytes in place.
        func copy(topic: String? = nil, headers: [KafkaHeader]? = nil, key: [UInt8]?? = .none, value: [UInt8]?? = .none) -> Payload {
            let k = keyCount, v = valueCount
            return withBytes(from: 0, count: max(0, k) + max(0, v)) { all in
                Self.bytes(key, else: k < 0 ? nil : UnsafeRawBufferPointer(rebasing: all[..<k])) { newKey in
                    Self.bytes(value, else: v < 0 ? nil : UnsafeRawBufferPointer(rebasing: all[max(0, k)...])) { newValue in
                        Payload.make(topic: topic ?? self.topic, headers: headers ?? self.headers, key: newKey, value: newValue)
                    }
                }
            }
        }
    }

    /// The one reference to a ``Payload`` a message holds.
    ///
    /// `@unchecked Sendable`, and only this: the standard library leaves `ManagedBuffer` without
    /// `Sendable` (one may be mutated), and a `Payload` is written once, in
    /// ``Payload/make(topic:headers:key:value:)`` before any message holds it, then only read:
    /// immutable as a class of `let` properties is (swift-nio's `ByteBuffer` storage likewise).
    @usableFromInline
    struct PayloadReference: @unchecked Sendable {
        @usableFromInline let buffer: Payload
        @inlinable init(_ buffer: Payload) { self.buffer = buffer }
    }

    @usableFromInline var reference: PayloadReference
    @inlinable var payload: Payload {
        get { reference.buffer }
        set { reference = PayloadReference(newValue) }
    }
    public var partition: Int32
    public var offset: Int64
    /// Epoch milliseconds, if the record has a timestamp.
    public var timestamp: Int64?

    public var topic: String {
        get { payload.topic }
        set { payload = payload.copy(topic: newValue) }
    }
    public var headers: [KafkaHeader] {
        get { payload.headers }
        set { payload = payload.copy(headers: newValue) }
    }
    /// A copy of the key's bytes.
    public var key: [UInt8]? {
        get { withUnsafeKey { Array($0) } }
        set { payload = payload.copy(key: .some(newValue)) }
    }
    /// A copy of the value's bytes.
    public var value: [UInt8]? {
        get { withUnsafeValue { Array($0) } }
        set { payload = payload.copy(value: .some(newValue)) }
    }

    /// Whether the record has a value (a tombstone has none).
    @inlinable public var hasValue: Bool { payload.valueCount >= 0 }

    /// Calls `body` with the value's bytes, without copying them; `nil` (and `body` is not
    /// called) when the record has no value. The bytes are valid only inside `body`.
    @inlinable
    public func withUnsafeValue<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R? {
        let p = payload
        let n = p.valueCount
        guard n >= 0 else { return nil }
        return p.withBytes(from: max(0, p.keyCount), count: n, body)
    }

    /// Calls `body` with the key's bytes, without copying them; `nil` when the record has no key.
    @inlinable
    public func withUnsafeKey<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R? {
        let p = payload
        let n = p.keyCount
        guard n >= 0 else { return nil }
        return p.withBytes(from: 0, count: n, body)
    }

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        reference = PayloadReference(Payload.make(topic: topic, headers: headers, key: key, value: value))
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
    }

    /// A message whose key and value are copied from `key` and `value` (`nil`: absent) into
    /// its one allocation.
    public init(
        topic: String, partition: Int32, offset: Int64, copyingKey key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
        headers: [KafkaHeader] = [], timestamp: Int64? = nil
    ) {
        reference = PayloadReference(Payload.make(topic: topic, headers: headers, key: key, value: value))
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
