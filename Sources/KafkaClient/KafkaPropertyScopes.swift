import CRdKafka
import Foundation

/// Which kind of client each librdkafka property applies to, as the installed librdkafka
/// lists it: the "C/P" column of `rd_kafka_conf_properties_show` (C: consumer only,
/// P: producer only, `*`: both).
///
/// One configuration map serves every client of an application (the `kafka:` section of
/// `topologies.yaml`, as Kafka Streams' properties serve its consumer, producer and admin
/// client). librdkafka ignores a property of the other kind but logs a `CONFWARN` for it
/// ("… is a consumer property and will be ignored by this producer instance"), so a
/// consumer setting such as `session.timeout.ms` warned from every producer and admin
/// client. ``forClient(_:_:)`` leaves such properties out, as Kafka Streams passes each
/// client only the properties of its kind.
enum KafkaPropertyScopes {
    /// Properties librdkafka applies to consumers only.
    static let consumerOnly: Set<String> = table.consumer
    /// Properties librdkafka applies to producers only.
    static let producerOnly: Set<String> = table.producer

    /// `config` without the properties that do not apply to a client of `kind` (an admin
    /// client is a producer handle).
    static func forClient(_ kind: rd_kafka_type_t, _ config: [String: String]) -> [String: String] {
        let other = kind == RD_KAFKA_CONSUMER ? producerOnly : consumerOnly
        return config.filter { !other.contains($0.key) }
    }

    private static let table: (consumer: Set<String>, producer: Set<String>) = parse(propertiesTable())

    /// The rows of librdkafka's property table: `name | C/P | range | default | importance | description`.
    /// Read as bytes (the table is ASCII and ~40 KB: Foundation's trimming per line cost ~30M
    /// instructions at every process start).
    static func parse(_ text: String) -> (consumer: Set<String>, producer: Set<String>) {
        var consumer: Set<String> = [], producer: Set<String> = []
        let space = UInt8(ascii: " "), bar = UInt8(ascii: "|")
        func trimmed(_ field: Substring.UTF8View) -> Substring.UTF8View {
            guard let first = field.firstIndex(where: { $0 != space }), let last = field.lastIndex(where: { $0 != space }) else { return field.prefix(0) }
            return field[first...last]
        }
        for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
            let columns = line.split(separator: bar, maxSplits: 2, omittingEmptySubsequences: false)
            guard columns.count == 3 else { continue }
            let scope = trimmed(columns[1])
            guard scope.count == 1, let c = scope.first, c == UInt8(ascii: "C") || c == UInt8(ascii: "P") else { continue }
            let name = String(decoding: trimmed(columns[0]), as: UTF8.self)
            if c == UInt8(ascii: "C") { consumer.insert(name) } else { producer.insert(name) }
        }
        return (consumer, producer)
    }

    /// What `rd_kafka_conf_properties_show` prints, read through an in-memory stream; empty
    /// when the stream cannot be opened (then nothing is left out, as before).
    private static func propertiesTable() -> String {
        var buffer: UnsafeMutablePointer<CChar>?
        var size = 0
        guard let stream = open_memstream(&buffer, &size) else { return "" }
        rd_kafka_conf_properties_show(stream)
        fclose(stream)
        guard let buffer else { return "" }
        defer { free(buffer) }
        return String(cString: buffer)
    }
}
