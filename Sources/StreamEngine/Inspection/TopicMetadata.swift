import CRdKafka
import Foundation
import KafkaClient
import Logging

/// Partition counts of every topic of a cluster, from one Metadata request for
/// all topics.
///
/// Why not `KafkaConsumer.partitionCount(topic:)`: that sends a Metadata
/// request naming the topic, and librdkafka 2.0.2's mock cluster (the embedded
/// cluster and `stream-engine dev-broker`) creates a missing topic it is asked
/// about — with 4 partitions — even when the client sets
/// `allow.auto.create.topics=false` (the mock announces a Metadata version too
/// old to carry that flag). An inspection tool must never create topics, so it
/// asks for all topics, which creates nothing, and asks about a single topic
/// (watermarks) only once it knows the topic exists.
public enum TopicMetadata {
    /// Every topic's partition count. Blocking: call from a dedicated thread.
    /// - Parameters:
    ///   - config: librdkafka configuration with `bootstrap.servers`.
    ///   - timeoutMs: how long to wait for the answer.
    /// - Throws: `KafkaError` when the cluster does not answer.
    public static func partitionCounts(config: [String: String], logger: Logger, timeoutMs: Int32 = 10_000) throws -> [String: Int] {
        let conf = rd_kafka_conf_new()!
        var errbuf = [CChar](repeating: 0, count: 512)
        for (key, value) in config.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, key, value, &errbuf, errbuf.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError.client("configuration \(key)=\(value): \(text(errbuf))")
            }
        }
        let box = Unmanaged.passRetained(LoggerBox(logger))
        defer { box.release() }
        rd_kafka_conf_set_opaque(conf, box.toOpaque())
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, message in
            guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
            let logger = Unmanaged<LoggerBox>.fromOpaque(opaque).takeUnretainedValue().logger
            let text = message.map { String(cString: $0) } ?? ""
            let fac = facility.map { String(cString: $0) } ?? "-"
            logger.log(level: level <= 3 ? .error : (level == 4 ? .warning : .debug), "\(text)", metadata: ["rdkafka.facility": "\(fac)"])
        }
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errbuf, errbuf.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError.client("rd_kafka_new: \(text(errbuf))")
        }
        defer { rd_kafka_destroy(rk) }
        var md: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 1, nil, &md, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let md else {
            throw KafkaError(code: err.rawValue, message: "metadata of all topics from \(config["bootstrap.servers"] ?? "?"): \(String(cString: rd_kafka_err2str(err)))")
        }
        defer { rd_kafka_metadata_destroy(md) }
        var out: [String: Int] = [:]
        for i in 0..<Int(md.pointee.topic_cnt) {
            let t = md.pointee.topics[i]
            guard t.err == RD_KAFKA_RESP_ERR_NO_ERROR || t.partition_cnt > 0 else { continue }
            out[String(cString: t.topic)] = Int(t.partition_cnt)
        }
        return out
    }

    private static func text(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    private final class LoggerBox {
        let logger: Logger
        init(_ logger: Logger) { self.logger = logger }
    }
}
