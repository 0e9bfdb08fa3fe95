import Foundation
import Logging
@testable import KafkaClient
import ThreadExecutors

let testLogger: Logger = {
    var l = Logger(label: "kafka-test")
    l.logLevel = .critical
    return l
}()

/// Runs `body` on a thread of its own (blocking librdkafka calls never run on the cooperative pool).
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    let executor = DedicatedThreadExecutor(name: "test-consumer")
    defer { executor.execute { executor.shutdown() } }
    return try await executor.run(body)
}

/// Polls until `stop` says so or `timeout` passes; returns every message.
func pollUntil(_ consumer: KafkaConsumer, timeout: Duration = .seconds(60), stop: @escaping @Sendable ([KafkaMessage], [TopicPartitionOffset]) -> Bool) async throws -> [KafkaMessage] {
    try await onThread {
        var all: [KafkaMessage] = []
        var eofs: [TopicPartitionOffset] = []
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let batch = try consumer.pollBatch(maxMessages: 1000, timeoutMs: 100)
            all += batch.messages
            eofs += batch.partitionEOFs
            if stop(all, eofs) { return all }
        }
        return all
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
func text(_ b: [UInt8]?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }
