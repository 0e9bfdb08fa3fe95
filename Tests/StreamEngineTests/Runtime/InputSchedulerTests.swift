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

    /// A merged input (2 upstream tasks) holding `n` records of upstream 0, none heard from upstream 1.
    func mergedWaiting(_ n: Int) -> PartitionGroup {
        var group = PartitionGroup(topics: ["rep"], mergingUpstreams: 2)
        for i in 0..<n {
            let stamp = RepartitionStamp(eventTime: 1000 + Int64(i), upstreamTask: 0, streamTime: 1000 + Int64(i), position: nil)
            let m = KafkaMessage(topic: "rep", partition: 0, offset: Int64(i), key: nil, value: stamp.encoded())
            group.append(m, topicIndex: 0, decoded: .success(StreamRecord(key: "k", value: JSONObject(), timestamp: 1000 + Int64(i))), stamp: stamp)
        }
        return group
    }

    @Test("back-pressure: a partition buffered above the bound is paused and resumed at half; a merged input whose records wait for an upstream task is never paused, however many it holds")
    func backPressure() {
        var scheduler = InputScheduler(maxTaskIdleMs: 0, maxDriftMs: 0, pauseAbove: 10, logger: Logger(label: "test"))
        let plain = TaskID(subTopology: "a", partition: 0), merged = TaskID(subTopology: "a.1", partition: 0)
        let input = TopicPartition("in", 0), rep = TopicPartition("rep", 0)
        let readers = [input: [plain], rep: [merged]]

        var waiting = mergedWaiting(50)
        #expect(waiting.next(mayRunAhead: { _ in true }, cap: .max) == .empty, "nothing may go before upstream 1 is heard from")
        #expect(waiting.status.waitsForUpstream && waiting.status.buffered["rep"] == 50)
        scheduler.update(merged, waiting.status)
        scheduler.update(plain, InputStatus(buffered: ["in": 11], heads: ["in": 5]))
        var actions = scheduler.backPressure(readers: readers)
        #expect(actions.pause == [input], "the plain input above the bound pauses; the merged one holding 50 does not")
        #expect(actions.resume.isEmpty)

        scheduler.update(plain, InputStatus(buffered: ["in": 6], heads: ["in": 5]))
        #expect(scheduler.backPressure(readers: readers).resume.isEmpty, "still above half the bound")
        scheduler.update(plain, InputStatus(buffered: ["in": 5], heads: ["in": 5]))
        actions = scheduler.backPressure(readers: readers)
        #expect(actions.resume == [input] && actions.pause.isEmpty)

        // Without the wait (the same count, takeable now), the merged input's partition pauses too.
        var takeable = InputStatus(buffered: ["rep": 50], heads: ["rep": 1000])
        scheduler.update(merged, takeable)
        #expect(scheduler.backPressure(readers: readers).pause == [rep])
        // And once it waits for upstream progress again, it resumes at once: the markers come through it.
        takeable.heads = [:]
        takeable.waitsForUpstream = true
        scheduler.update(merged, takeable)
        #expect(scheduler.backPressure(readers: readers).resume == [rep])
    }

    @Test("a single-queue input hands out its records in arrival order whether they were decoded on arrival or are decoded when taken, however the two are interleaved and however long the queue")
    func undecodedAndDecodedInOrder() {
        var group = PartitionGroup(topics: ["in"])
        var offset: Int64 = 0, taken: [(offset: Int64, decoded: Bool)] = []
        func undecoded(_ n: Int) {
            for _ in 0..<n {
                group.appendUndecoded(KafkaMessage(topic: "in", partition: 0, offset: offset, key: nil, value: nil, timestamp: 5), topicIndex: 0)
                offset += 1
            }
        }
        func decoded(_ n: Int) {
            for _ in 0..<n {
                let m = KafkaMessage(topic: "in", partition: 0, offset: offset, key: nil, value: nil)
                group.append(m, topicIndex: 0, decoded: .success(StreamRecord(key: "k", value: JSONObject(), timestamp: 1000 + offset)))
                offset += 1
            }
        }
        func take(_ n: Int) {
            for _ in 0..<n {
                guard case .take(let i) = group.next(mayRunAhead: { _ in true }, cap: .max) else { Issue.record("nothing to take at \(taken.count)"); return }
                let p = group.removeFirst(i)
                taken.append((p.message.offset, p.decoded != nil))
            }
        }
        undecoded(3); decoded(2); undecoded(2)
        #expect(group.count(0) == 7 && group.total == 7)
        take(4); undecoded(1); decoded(1)
        take(5)
        #expect(group.count(0) == 0 && group.next(mayRunAhead: { _ in true }, cap: .max) == .empty)
        #expect(taken.map(\.offset) == Array(0..<9))
        #expect(taken.map(\.decoded) == [false, false, false, true, true, false, false, false, true])
        // Past the compaction of a long queue's taken head.
        undecoded(3000); take(2000); undecoded(10); take(1010)
        #expect(taken.map(\.offset) == Array(0..<3019) && group.total == 0)
        #expect(group.partitionTimes[0] == 1008, "the partition time is the last event time known")
    }

    @Test("records several tasks read wait in their shared array until taken: a run's records come out in arrival order among records decoded on arrival and records decoded when taken, from the resume offset on, with their own event times at the head (what aligning in event time reads)")
    func sharedRunsInOrder() {
        var group = PartitionGroup(topics: ["in"])
        var offset: Int64 = 0, taken: [(offset: Int64, how: String)] = []
        func message() -> KafkaMessage {
            defer { offset += 1 }
            return KafkaMessage(topic: "in", partition: 0, offset: offset, key: nil, value: nil, timestamp: 5)
        }
        func record(_ m: KafkaMessage) -> StreamRecord { StreamRecord(key: "k", value: JSONObject(), timestamp: 1000 + m.offset) }
        func shared(_ n: Int, from start: Int = 0) {
            let run = (0..<n).map { _ in let m = message(); return InputMessage(message: m, record: record(m)) }
            if group.takesShared { group.appendShared(run, from: start) } else { Issue.record("shared run behind other records") }
        }
        func decoded(_ n: Int) {
            for _ in 0..<n { let m = message(); group.append(m, topicIndex: 0, decoded: .success(record(m))) }
        }
        func take(_ n: Int) {
            for _ in 0..<n {
                guard case .take(let i) = group.next(mayRunAhead: { _ in true }, cap: .max) else { Issue.record("nothing to take at \(taken.count)"); return }
                if let (inputs, k) = group.takeShared(i) {
                    taken.append((inputs[k].message.offset, "shared"))
                } else {
                    let p = group.removeFirst(i)
                    taken.append((p.message.offset, p.decoded != nil ? "decoded" : "undecoded"))
                }
            }
        }
        shared(3, from: 1)  // offset 0 is below the resume offset: left out
        #expect(group.count(0) == 2 && group.headTimestamp(0) == 1001, "the head's own event time")
        shared(2)
        #expect(!group.takesShared || group.count(0) == 4)
        take(1)
        decoded(1)  // arriving behind shared records: they move into the queue of decoded ones, in order
        #expect(!group.takesShared && group.count(0) == 4)
        take(4)
        #expect(group.takesShared)
        shared(2); take(1)
        group.appendUndecoded(message(), topicIndex: 0)
        take(2)
        #expect(group.total == 0 && group.next(mayRunAhead: { _ in true }, cap: .max) == .empty)
        #expect(taken.map(\.offset) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(taken.map(\.how) == ["shared", "decoded", "decoded", "decoded", "decoded", "shared", "decoded", "undecoded"])
        #expect(group.partitionTimes[0] == 1007, "the last event time taken")
        // A shared head beyond the cap waits (a task aligned with its siblings).
        shared(1)
        #expect(group.next(mayRunAhead: { _ in true }, cap: 1008) == .capped)
        #expect(group.next(mayRunAhead: { _ in true }, cap: 1009) == .take(0))
    }

    @Test("a shared run's records are released once the task has taken them, while later runs keep arriving behind them (a task with a backlog never empties its queue of runs)")
    func sharedRunsReleasedWhenTaken() {
        var group = PartitionGroup(topics: ["in"])
        var offset: Int64 = 0
        func shared(_ n: Int) {
            let run = (0..<n).map { _ in
                defer { offset += 1 }
                let m = KafkaMessage(topic: "in", partition: 0, offset: offset, key: nil, value: nil, timestamp: 5)
                return InputMessage(message: m, record: StreamRecord(key: "k", value: JSONObject(), timestamp: 1000 + m.offset))
            }
            group.appendShared(run, from: 0)
        }
        var next: Int64 = 0
        func take(_ n: Int) {
            for _ in 0..<n {
                guard let (inputs, k) = group.takeShared(0) else { Issue.record("no shared record at \(next)"); return }
                #expect(inputs[k].message.offset == next)
                next += 1
            }
        }
        shared(3); shared(3)
        take(4)
        #expect(group.count(0) == 2 && group.heldSharedRecords == 3, "the first run, taken, is released; the second is held")
        // A backlog that is never taken to its end: 200 runs of 10, each arriving before the last is taken.
        for _ in 0..<200 { shared(10); take(10) }
        #expect(group.count(0) == 2)
        #expect(group.heldSharedRecords <= 20, "the runs taken are released as they go: \(group.heldSharedRecords) records held")
        take(2)
        #expect(group.total == 0 && group.heldSharedRecords == 0 && next == 2006)
    }

    @Test("a shared run is taken a range at a time: up to the limit, ending before the first record beyond the cap or with the run; the partition time follows what was taken, and a taken run is released")
    func sharedRunTakenByRange() {
        var group = PartitionGroup(topics: ["in"])
        var offset: Int64 = 0
        func shared(_ times: [Int64]) {
            let run = times.map { t in
                defer { offset += 1 }
                let m = KafkaMessage(topic: "in", partition: 0, offset: offset, key: nil, value: nil, timestamp: 5)
                return InputMessage(message: m, record: StreamRecord(key: "k", value: JSONObject(), timestamp: t))
            }
            group.appendShared(run, from: 0)
        }
        func take(cap: Int64 = .max, limit: Int = .max) -> [Int64] {
            guard let (inputs, range) = group.takeSharedRun(atMost: cap, limit: limit) else { return [] }
            return range.map { inputs[$0].message.offset }
        }
        shared([10, 20, 30, 25, 40]); shared([50, 60])
        #expect(take(limit: 2) == [0, 1])
        #expect(group.partitionTimes[0] == 20)
        #expect(take(cap: 29) == [], "the head (30) is beyond the cap: nothing taken")
        #expect(take(cap: 35) == [2, 3], "stops before 40, the first beyond the cap; 25 after 30 is taken")
        #expect(group.partitionTimes[0] == 30, "the largest event time taken, not the last")
        #expect(take() == [4], "a range ends with its run")
        #expect(group.heldSharedRecords == 2, "the first run, taken, is released")
        #expect(group.count(0) == 2 && take() == [5, 6] && group.total == 0 && group.heldSharedRecords == 0)
        #expect(group.takeSharedRun(atMost: .max, limit: 5) == nil)
    }

    @Test("records decoded when taken are taken a range at a time, in offset order, up to the limit; a decoded record arriving behind them waits its turn; the taken ones go at the next append")
    func undecodedTakenByRange() {
        var group = PartitionGroup(topics: ["in"])
        var offset: Int64 = 0
        func undecoded(_ n: Int) {
            for _ in 0..<n {
                group.appendUndecoded(KafkaMessage(topic: "in", partition: 0, offset: offset, key: nil, value: nil, timestamp: 1000 + offset), topicIndex: 0)
                offset += 1
            }
        }
        func take(limit: Int = .max) -> [Int64] {
            guard let (messages, range) = group.takeUndecodedRun(atMost: .max, limit: limit) else { return [] }
            return range.map { messages[$0]!.offset }
        }
        undecoded(5)
        #expect(take(limit: 3) == [0, 1, 2])
        #expect(group.count(0) == 2 && group.partitionTimes[0] == 1002, "the place-holding event times of what was taken")
        undecoded(2)
        #expect(take() == [3, 4, 5, 6] && group.total == 0)
        #expect(take() == [], "nothing left")
        undecoded(1)
        let m = KafkaMessage(topic: "in", partition: 0, offset: 8, key: nil, value: nil, timestamp: 5)
        group.append(m, topicIndex: 0, decoded: .success(StreamRecord(key: "k", value: JSONObject(), timestamp: 2000)))
        #expect(take() == [], "a decoded record behind them: both are in the queue of decoded ones, taken one by one")
        #expect(group.count(0) == 2 && group.removeFirst(0).message.offset == 7 && group.removeFirst(0).message.offset == 8)
    }

    @Test("back-pressure between readers of one partition: the slow reader's backlog pauses the partition though the fast one has nothing buffered, unless that empty reader holds back its aligned siblings")
    func backPressureBetweenReaders() {
        var scheduler = InputScheduler(maxTaskIdleMs: 0, maxDriftMs: 0, pauseAbove: 10, logger: Logger(label: "test"))
        let fast = TaskID(subTopology: "sums", partition: 0), slow = TaskID(subTopology: "counts", partition: 0)
        let input = TopicPartition("in", 0)
        let readers = [input: [fast, slow]]
        scheduler.update(fast, InputStatus(buffered: ["in": 0]))
        scheduler.update(slow, InputStatus(buffered: ["in": 11], heads: ["in": 5]))
        #expect(scheduler.backPressure(readers: readers).pause == [input], "11 buffered in one reader: paused, however empty the other")
        scheduler.update(slow, InputStatus(buffered: ["in": 6], heads: ["in": 5]))
        #expect(scheduler.backPressure(readers: readers).resume.isEmpty, "still above half the bound")
        scheduler.update(slow, InputStatus(buffered: ["in": 5], heads: ["in": 5]))
        #expect(scheduler.backPressure(readers: readers).resume == [input])

        // The empty reader's sub-topology has a task waiting at the alignment cap: its frontier
        // moves only with this partition's records, so the partition is not paused, and resumes if it was.
        scheduler.update(slow, InputStatus(buffered: ["in": 11], heads: ["in": 5]))
        scheduler.cappedSubTopologies = ["sums"]
        #expect(scheduler.backPressure(readers: readers).pause.isEmpty)
        scheduler.cappedSubTopologies = []
        #expect(scheduler.backPressure(readers: readers).pause == [input])
        scheduler.cappedSubTopologies = ["sums"]
        #expect(scheduler.backPressure(readers: readers).resume == [input])
        // A capped sub-topology whose reader here has records of its own does not keep the partition running.
        scheduler.cappedSubTopologies = ["counts"]
        #expect(scheduler.backPressure(readers: readers).pause == [input])
    }
}
