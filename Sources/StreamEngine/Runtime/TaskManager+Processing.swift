import KafkaClient

/// The task manager's processing: polled messages buffered in their tasks (parsed and
/// decoded once where several tasks read them), then processed in event-time order.
extension TaskManager {
    /// Buffers polled messages in their tasks and processes what event-time
    /// order allows now (see `InputScheduler`); pauses and resumes partitions
    /// for back-pressure.
    func process(_ messages: [KafkaMessage], endOfPartition: [TopicPartitionOffset] = []) async throws {
        let runs = PartitionRun.runs(of: messages)
        scheduler.observe(messages, runs: runs, endOfPartition: endOfPartition)
        let readers = runs.map { tasksByPartition[$0.partition] ?? [] }
        let shared = await parseShared(messages, runs: runs, readers: readers)
        var perTask: [TaskID: [InputMessage]] = [:]
        for (r, run) in runs.enumerated() where !readers[r].isEmpty {
            let inputs = run.range.map { InputMessage(message: messages[$0], parsedValue: shared[$0]?.parsed, decoded: shared[$0]?.decoded) }
            for id in readers[r] { perTask[id, default: []].append(contentsOf: inputs) }
        }
        if !perTask.isEmpty {
            uncommitted = true
            let work = perTask.compactMap { id, msgs in tasks[id].map { (id, $0, msgs) } }
            let statuses = await withTaskGroup(of: (TaskID, InputStatus).self) { group in
                for (id, task, msgs) in work { group.addTask { (id, await task.enqueue(msgs)) } }
                return await group.reduce(into: [(TaskID, InputStatus)]()) { $0.append($1) }
            }
            for (id, status) in statuses { scheduler.update(id, status) }
            processedTotal += messages.count { !UpstreamMerge.isMarker($0) }  // progress markers are no records
        }
        try await drainBuffered()
    }

    /// What `parseShared` did once for every task that reads a message.
    private struct SharedInput: Sendable {
        let parsed: Result<JSONValue, JSONParseError>
        /// The record decoded, when every reader's source decodes it alike.
        let decoded: Result<StreamRecord, RecordError>?
    }

    /// Parses the value of each message that several tasks read (pipelines on one
    /// topic) once for all of them, and decodes it once too when their sources decode
    /// alike (`SourceDecoding`), the partitions in parallel; `nil` where one task reads
    /// the message or it has no value.
    private func parseShared(_ messages: [KafkaMessage], runs: [PartitionRun], readers: [[TaskID]]) async -> [SharedInput?] {
        var out = [SharedInput?](repeating: nil, count: messages.count)
        let shared: [(range: Range<Int>, decoding: SourceDecoding?)] = runs.indices.filter { readers[$0].count > 1 }.map { r in
            let readerTasks = readers[r].compactMap { tasks[$0] }
            let decodings = Set(readerTasks.map(\.sourceDecoding))
            let alike = readerTasks.count == readers[r].count && !readerTasks.contains { $0.sub.fromRepartition } && decodings.count == 1
            return (runs[r].range, alike ? decodings.first : nil)
        }
        guard !shared.isEmpty else { return out }
        let results = await withTaskGroup(of: [(Int, SharedInput)].self) { group in
            for (range, decoding) in shared {
                group.addTask {
                    var hints: [Int] = []
                    var keys = JSONKeyCache()
                    return range.compactMap { i -> (Int, SharedInput)? in
                        let m = messages[i]
                        guard let v = m.value else { return nil }
                        let parsed = Result { () throws(JSONParseError) in try JSONValue.parse(v, keys: &keys) }
                        let decoded = decoding.map { d in
                            Result { () throws(RecordError) in
                                try d.decode(m, parsed: parsed, origin: RecordOrigin(topic: m.topic, partition: m.partition, offset: m.offset), hints: &hints)
                            }
                        }
                        return (i, SharedInput(parsed: parsed, decoded: decoded))
                    }
                }
            }
            return await group.reduce(into: []) { $0.append(contentsOf: $1) }
        }
        for (i, r) in results { out[i] = r }
        return out
    }

    /// Runs drain rounds until no task can go on: every round computes the
    /// alignment caps from the tasks' frontiers and lets each task process up to its cap.
    private func drainBuffered() async throws {
        var tasksBySub: [String: [TaskID]] = [:]
        var topicsBySub: [String: [String]] = [:]
        for (id, task) in tasks where task.sub.alignsEventTime {
            tasksBySub[id.subTopology, default: []].append(id)
            topicsBySub[id.subTopology] = task.sub.sourceTopics
        }
        while true {
            let now = ContinuousClock.now
            let caps = scheduler.caps(tasksBySub, topics: topicsBySub)
            let work: [(TaskID, StreamTask, Set<String>, Int64)] = tasks.compactMap { id, task in
                guard (scheduler.statuses[id]?.total ?? 0) > 0 else { return nil }
                return (id, task, scheduler.mayRunAhead(id, topics: task.sub.sourceTopics, now: now), caps[id.subTopology] ?? .max)
            }
            if work.isEmpty { break }
            let reports = try await withThrowingTaskGroup(of: (TaskID, StreamTask.DrainReport).self) { group in
                for (id, task, ahead, cap) in work { group.addTask { (id, try await task.drain(mayRunAhead: ahead, cap: cap)) } }
                return try await group.reduce(into: [(TaskID, StreamTask.DrainReport)]()) { $0.append($1) }
            }
            var progress = 0
            var capped = false
            for (id, r) in reports {
                scheduler.update(id, r.status)
                scheduler.noteWaiting(id, on: r.starvedOn, now: now)
                progress += r.processed
                deadLetteredTotal += r.deadLettered
                if r.stoppedBecause == .capped { capped = true }
            }
            if progress == 0 || !capped { break }
        }
        let (pause, resume) = scheduler.backPressure(readers: tasksByPartition)
        if !pause.isEmpty {
            logger.debug("pausing \(pause.count) partitions: their buffered records wait for other partitions")
            do { try consumer.pause(pause) } catch { logger.warning("pause \(pause): \(error)") }
        }
        if !resume.isEmpty {
            do { try consumer.resume(resume) } catch { logger.warning("resume \(resume): \(error)") }
        }
    }
}
