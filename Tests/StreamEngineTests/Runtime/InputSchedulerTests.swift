import KafkaClient
import Logging
import Testing
@testable import StreamEngine

@Suite("Input scheduling: a batch's runs of one partition")
struct InputSchedulerTests {
    func message(_ topic: String, _ partition: Int32, _ offset: Int64) -> KafkaMessage {
        KafkaMessage(topic: topic, partition: partition, offset: offset, key: nil, value: nil)
    }

    @Test("consecutive messages of one partition form one run; a partition met again starts another; the end of a partition is judged by its furthest offset")
    func runs() {
        let batch = [message("a", 0, 5), message("a", 0, 6), message("a", 1, 0), message("b", 1, 9), message("a", 0, 7)]
        let runs = PartitionRun.runs(of: batch)
        #expect(runs.map(\.partition) == [TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 1), TopicPartition("a", 0)])
        #expect(runs.map(\.range) == [0..<2, 2..<3, 3..<4, 4..<5])
        #expect(PartitionRun.runs(of: []).isEmpty)

        var scheduler = InputScheduler(maxTaskIdleMs: 0, maxDriftMs: 0, pauseAbove: 1000, logger: Logger(label: "test"))
        scheduler.observe(batch, endOfPartition: [TopicPartitionOffset("a", 0, 8), TopicPartitionOffset("b", 1, 9)])
        #expect(scheduler.atEnd(TopicPartition("a", 0)), "offset 7 fetched: the end at 8 is reached")
        #expect(!scheduler.atEnd(TopicPartition("b", 1)), "offset 9 fetched after the end event at 9")
        #expect(!scheduler.atEnd(TopicPartition("a", 1)), "no end event")
    }
}
