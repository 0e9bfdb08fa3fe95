import CRdKafka

/// An error reported by librdkafka, carrying its error code name (e.g.
/// `_TRANSPORT`, `TOPIC_ALREADY_EXISTS`) and message, and — for errors of the
/// transactional API — librdkafka's error classes.
public struct KafkaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The librdkafka error code (`rd_kafka_resp_err_t`).
    public let code: Int32
    /// librdkafka's name for the code, e.g. `_MSG_TIMED_OUT`.
    public let name: String
    /// The human-readable message.
    public let message: String
    /// The operation may be retried as is.
    public let isRetriable: Bool
    /// The current transaction must be aborted (then a new one may begin).
    public let requiresAbort: Bool
    /// The client instance is unusable and must be closed and recreated.
    public let isFatal: Bool

    public init(code: Int32, message: String? = nil, isRetriable: Bool = false, requiresAbort: Bool = false, isFatal: Bool = false) {
        self.code = code
        let err = rd_kafka_resp_err_t(rawValue: code)
        self.name = String(cString: rd_kafka_err2name(err))
        self.message = message ?? String(cString: rd_kafka_err2str(err))
        self.isRetriable = isRetriable
        self.requiresAbort = requiresAbort
        self.isFatal = isFatal
    }

    init(_ err: rd_kafka_resp_err_t, _ message: String? = nil) {
        self.init(code: err.rawValue, message: message)
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer) {
        defer { rd_kafka_error_destroy(error) }
        self.init(
            code: rd_kafka_error_code(error).rawValue,
            message: String(cString: rd_kafka_error_string(error)),
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            requiresAbort: rd_kafka_error_txn_requires_abort(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0)
    }

    /// A client-side error that librdkafka did not produce (bad argument, invalid state).
    public static func client(_ message: String) -> KafkaError {
        KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: message)
    }

    public var description: String { "\(name): \(message)" }

    static func check(_ err: rd_kafka_resp_err_t, _ what: @autoclosure () -> String) throws(KafkaError) {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let base = KafkaError(err)
            throw KafkaError(code: base.code, message: "\(what()): \(base.message)")
        }
    }

    static func check(_ error: OpaquePointer?) throws(KafkaError) {
        if let error { throw KafkaError(consuming: error) }
    }
}

/// The version of the linked librdkafka, e.g. `2.0.2`.
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }

/// The text of a NUL-terminated C buffer.
func cString(_ buffer: [CChar]) -> String {
    let end = buffer.firstIndex(of: 0) ?? buffer.endIndex
    return String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
