import CRdKafka

/// The partition librdkafka's producer picks for a key, so that a reader can find
/// which partition (hence which task and instance) holds a key.
public enum KafkaPartitioner {
    /// The partition of `key` among `count` partitions under librdkafka's
    /// partitioner `name` (the `partitioner` setting; default `consistent_random`).
    /// `nil` for an empty key (the random partitioners spread those), an unknown
    /// partitioner or no partitions.
    public static func partition(key: [UInt8], count: Int32, partitioner name: String = "consistent_random") -> Int32? {
        Hash(partitioner: name)?.partition(key: key, count: count)
    }

    /// The key hash of one librdkafka partitioner, looked up by name once (a caller that
    /// places many keys would otherwise compare the name per key).
    public struct Hash: Sendable {
        typealias Fn = @convention(c) (OpaquePointer?, UnsafeRawPointer?, Int, Int32, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32
        private let fn: Fn

        /// The hash of librdkafka's partitioner `name`; `nil` for one it does not have.
        public init?(partitioner name: String) {
            switch name {
            case "consistent", "consistent_random": fn = rd_kafka_msg_partitioner_consistent
            case "murmur2", "murmur2_random": fn = rd_kafka_msg_partitioner_murmur2
            case "fnv1a", "fnv1a_random": fn = rd_kafka_msg_partitioner_fnv1a
            default: return nil
            }
        }

        /// The partition of `key` among `count` partitions; `nil` for an empty key (the
        /// random partitioners spread those) or no partitions.
        public func partition(key: [UInt8], count: Int32) -> Int32? {
            guard !key.isEmpty, count > 0 else { return nil }
            // With a non-empty key these only hash the key: the topic handle is not used.
            return key.withUnsafeBytes { fn(nil, $0.baseAddress, $0.count, count, nil, nil) }
        }
    }
}
