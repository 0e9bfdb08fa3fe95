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
    static func parse(_ text: String) -> (consumer: Set<String>, producer: Set<String>) {
        var consumer: Set<String> = [], producer: Set<String> = []
        for line in text.split(separator: "\n") {
            let columns = line.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
            guard columns.count == 3 else { continue }
            let name = columns[0].trimmingCharacters(in: .whitespaces)
            switch columns[1].trimmingCharacters(in: .whitespaces) {
            case "C": consumer.insert(name)
            case "P": producer.insert(name)
            default: continue
            }
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
