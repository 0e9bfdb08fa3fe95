import KafkaClient

/// A task's start: its stores restored, and where its inputs resume.
extension StreamTask {
    /// Restores the task's stores (from `warm` copies of a standby where given, else from
    /// local snapshots and changelogs), applying only committed changelog records; blocking
    /// Kafka reads run on the restore consumers' executors.
    ///
    /// - Parameter consumers: how many consumers one store's changelog range may be split
    ///   over (``StoreRestorer/maxRanges``): fewer when other tasks restore at the same time.
    func restore(committed: [String: Int64], streamTime restoredStreamTime: Int64 = .min, warm: [String: WarmStoreCopy] = [:], consumers: Int = 4) async throws -> [RestoreReport] {
        if restoredStreamTime > streamTime { streamTime = restoredStreamTime }
        var reports: [RestoreReport] = []
        var restorer = StoreRestorer(kafkaConfig: env.config.kafka, logger: env.logger)
        restorer.maxRanges = max(1, consumers)
        for (name, store) in stores.sorted(by: { $0.key < $1.key }) {
            let topic = env.config.changelogTopic(store: name)
            let path = StoreSnapshot.path(stateDir: env.stateDir, applicationId: env.config.applicationId, store: name, partition: partition)
            let partition = self.partition
            let (entries, report) = try await restorer.restore(store: name, partition: partition, changelogTopic: topic, snapshotPath: path, committed: committed, warm: warm[name])
            store.replaceAll(entries)
            reports.append(report)
        }
        for step in steps { if case .window(let w) = step { w.rebuildIndex() } }
        if let d = sub.dedupeStore, let store = stores[d] {
            var progress: [Int32: UpstreamMerge.Progress] = [:]
            for (k, e) in store.allEntries {
                if k.hasPrefix(Self.progressKeyPrefix) {
                    if let u = Int32(k.dropFirst(Self.progressKeyPrefix.count)), let st = e.value["st"]?.intValue, let o = e.value["o"]?.intValue {
                        progress[u] = UpstreamMerge.Progress(streamTime: st, idle: e.value["idle"]?.boolValue ?? false, offset: o)
                    }
                }
            }
            input.restoreProgress(progress)
        }
        // A merged input counts positions per upstream input partition: what was taken before goes on counting.
        if input.merge != nil { mergedProcessed = committed.mapValues { $0 - 1 } }
        // The partition resumes at the slowest reader's offset: skip what this task had processed.
        if input.merge == nil { resumeAt = input.topics.map { committed[$0] ?? .min } }
        lastCommittedTag = CommitTag(committed)
        return reports
    }
}
