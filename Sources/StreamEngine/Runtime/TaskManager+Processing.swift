import KafkaClient

/// The task manager's processing: polled messages buffered in their tasks (parsed and
/// decoded once where several tasks read them), then processed in event-time order.
extension TaskManager {
    /// Buffers polled messages in their tasks and processes what event-time
    /// order allows now (see `InputScheduler`); pauses and resumes partitions
    /// for back-pressure.
    func process(_ messages: [KafkaMessage], endOfPartition: [TopicPartitionOffset] = []) async throws {
        // A commit that failed behind the tasks stops them here, not a commit interval later.
        if commitFailure != nil { try await settleCommitInFlight() }
        await buffer(messages, endOfPartition: endOfPartition)
        try await drainBuffered()
    }

    /// Buffers polled messages in their tasks, parsed and decoded once where several
    /// tasks read them.
    private func buffer(_ messages: [KafkaMessage], endOfPartition: [TopicPartitionOffset] = []) async {
        let runs = PartitionRun.runs(of: messages)
        scheduler.observe(messages, runs: runs, endOfPartition: endOfPartition)
        let readers = runs.map { tasksByPartition[$0.partition] ?? [] }
        var shared = await parseShared(messages, runs: runs, readers: readers)
        // Per task, its runs in order.
        var perTask: [TaskID: [InputRun]] = [:]
        for (r, run) in runs.enumerated() where !readers[r].isEmpty {
            let parsedOnce = shared.removeValue(forKey: r)
            let inputs = parsedOnce?.inputs ?? run.range.map { InputMessage(message: messages[$0], parsedValue: nil) }
            // The readers of a run share one array (nothing writes to it): no copy per reader. A
            // task's runs stay separate arrays: appending a shared one to another copied it
            // (every element retained), which a batch with two runs of one partition did.
            let input = InputRun(inputs: inputs, shared: parsedOnce != nil, decoded: parsedOnce?.decoded ?? false)
            for id in readers[r] { perTask[id, default: []].append(input) }
        }
        if !perTask.isEmpty {
            uncommitted = true
            let work = perTask.compactMap { id, runs in tasks[id].map { (id, $0, runs) } }
            let statuses = await withTaskGroup(of: (TaskID, InputStatus).self) { group in
                for (id, task, runs) in work { group.addTask { (id, await task.enqueue(runs: runs)) } }
                return await group.reduce(into: [(TaskID, InputStatus)]()) { $0.append($1) }
            }
            for (id, status) in statuses { scheduler.update(id, status) }
            processedTotal += messages.count { !UpstreamMerge.isMarker($0) }  // progress markers are no records
        }
    }

    /// Parses the value of each message that several tasks read (pipelines on one
    /// topic) once for all of them, and decodes it once too when their sources decode
    /// alike (`SourceDecoding`), the partitions in parallel: per such run (by index in
    /// `runs`), its messages with what was done to them, and whether they were decoded.
    private func parseShared(_ messages: [KafkaMessage], runs: [PartitionRun], readers: [[TaskID]]) async -> [Int: (inputs: [InputMessage], decoded: Bool)] {
        let shared: [(run: Int, range: Range<Int>, decoding: SourceDecoding?)] = runs.indices.filter { readers[$0].count > 1 }.map { r in
            let readerTasks = readers[r].compactMap { tasks[$0] }
            let decodings = Set(readerTasks.map(\.sourceDecoding))
            let alike = readerTasks.count == readers[r].count && !readerTasks.contains { $0.sub.fromRepartition } && decodings.count == 1
            return (r, runs[r].range, alike ? decodings.first : nil)
        }
        guard !shared.isEmpty else { return [:] }
        return await withTaskGroup(of: (Int, [InputMessage], Bool).self) { group in
            for (run, range, decoding) in shared {
                group.addTask { (run, Self.parse(messages[range], decoding: decoding), decoding != nil) }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = ($1.1, $1.2) }
        }
    }

    /// One run's messages parsed, and decoded with `decoding` if given.
    private static func parse(_ messages: ArraySlice<KafkaMessage>, decoding: SourceDecoding?) -> [InputMessage] {
        var hints = DecodeHints()
        var keys = JSONKeyCache()
        var inputs: [InputMessage] = []
        inputs.reserveCapacity(messages.count)
        for m in messages {
            guard let parsed = m.withUnsafeValue({ SourceValue.read($0, keys: &keys) }) else {
                inputs.append(InputMessage(message: m, parsedValue: nil))
                continue
            }
            if let decoding {
                // Decoded: the parsed value is not needed any more (nor kept).
                do throws(RecordError) {
                    let origin = RecordOrigin(topic: m.topic, partition: m.partition, offset: m.offset)
                    inputs.append(InputMessage(message: m, record: try decoding.decode(m, parsed: parsed, origin: origin, hints: &hints)))
                } catch {
                    inputs.append(InputMessage(message: m, failure: error))
                }
            } else {
                inputs.append(InputMessage(message: m, parsedValue: parsed))
            }
        }
        return inputs
    }

    /// Runs drain rounds until no task can go on, or the rounds have run for
    /// `drainBudget`: every round computes the alignment caps from the tasks'
    /// frontiers and lets each task process up to its cap, at most
    /// `recordsPerRound` records. The budget keeps the poll loop polling while a
    /// backlog is processed: upstream progress markers (and records of other
    /// partitions) otherwise wait in librdkafka's queues until the whole backlog is done.
    private func drainBuffered() async throws {
        let started = ContinuousClock.now
        drainStoppedByBudget = false
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
            scheduler.cappedSubTopologies = []
            if work.isEmpty { break }
            let reports = try await withThrowingTaskGroup(of: (TaskID, StreamTask.DrainReport).self) { group in
                for (id, task, ahead, cap) in work {
                    group.addTask { (id, try await task.drain(mayRunAhead: ahead, cap: cap, limit: Self.recordsPerRound)) }
                }
                return try await group.reduce(into: [(TaskID, StreamTask.DrainReport)]()) { $0.append($1) }
            }
            var progress = 0
            var limited = false
            for (id, r) in reports {
                scheduler.update(id, r.status)
                scheduler.noteWaiting(id, on: r.starvedOn, now: now)
                progress += r.processed
                deadLetteredTotal += r.deadLettered
                if r.stoppedBecause == .capped { scheduler.cappedSubTopologies.insert(id.subTopology) }
                if r.reachedLimit { limited = true }
            }
            let capped = !scheduler.cappedSubTopologies.isEmpty
            if progress == 0 || !(capped || limited) { break }
            if ContinuousClock.now - started >= Self.drainBudget {
                // Rounds were still making progress: more may be possible at once.
                drainStoppedByBudget = true
                break
            }
        }
        applyBackPressure()
    }

    /// Pauses and resumes partitions by their tasks' buffered records (`InputScheduler.backPressure`).
    private func applyBackPressure() {
        let (pause, resume) = scheduler.backPressure(readers: tasksByPartition)
        if !pause.isEmpty {
            logger.debug("pausing \(pause.count) partitions: their buffered records wait for other partitions")
            do { try consumer.pauseTaking(pause) } catch { logger.warning("pause \(pause): \(error)") }
        }
        if !resume.isEmpty {
            do { try consumer.resumeTaking(resume) } catch { logger.warning("resume \(resume): \(error)") }
        }
    }
}
