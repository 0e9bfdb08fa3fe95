import KafkaClient

/// The results of aggregates whose steps after them only materialise them: computed once per
/// changed key at the commit (as Kafka Streams' record cache does), from the keys each such
/// step marked changed.
extension StreamTask {
    /// Keys an aggregate step changed since the last commit, in first-change order.
    struct DirtyKeys {
        /// Each changed key with the event time, origin and input position of its last record
        /// (not the record itself: a commit interval can change hundreds of thousands of keys),
        /// in first-change order. A key is here once, unless the store lost its mark (see
        /// `KeyValueStore.update(_:expiresAt:initial:mark:_:)`): `latest` keeps the last entry of each.
        var entries: [(key: String, mark: Mark)] = []
        /// Tells this set's marks in the store from an earlier set's (the task's count of sets).
        var generation: UInt64 = 0
        /// The store's `marksLost` when the set was made: unchanged at the commit, no key was
        /// entered twice.
        var marksLostBefore = 0

        struct Mark {
            var timestamp: Int64
            var origin: RecordOrigin
            var position: InputPosition?
        }

        /// Notes a change of `key`, whose mark in the store is `tag`: the entry it points to is
        /// updated in place, or a new entry is added and `tag` pointed at it (the key's one lookup
        /// is the store's).
        mutating func mark(_ tag: inout UInt64, key: String, _ mark: Mark) {
            if tag >> 32 == generation, case let i = Int(tag & 0xFFFF_FFFF), i < entries.count {
                entries[i].mark = mark
            } else {
                tag = generation << 32 | UInt64(entries.count)
                entries.append((key, mark))
            }
        }

        /// Each key once with its last mark: `entries` as they are when the store lost no mark
        /// since the set was made (`marksLost`), else in the order of each key's last entry.
        func latest(marksLost: Int) -> [(key: String, mark: Mark)] {
            if marksLost == marksLostBefore { return entries }
            var seen = Set<String>(minimumCapacity: entries.count)
            var out: [(key: String, mark: Mark)] = []
            out.reserveCapacity(entries.count)
            for e in entries.reversed() where seen.insert(e.key).inserted { out.append(e) }
            return out.reversed()
        }

        var isEmpty: Bool { entries.isEmpty }
    }


    /// An empty set of changed keys per step, of a new generation (the marks of the last sets
    /// left in the stores point nowhere in them).
    func newDirtyKeys() -> [DirtyKeys] {
        dirtyGenerations += 1
        return Self.dirtyKeySets(steps: steps, generation: dirtyGenerations)
    }

    static func dirtyKeySets(steps: [CompiledStep], generation: UInt64) -> [DirtyKeys] {
        steps.map { step in
            guard case .aggregate(let store, _, _) = step else { return DirtyKeys(generation: generation) }
            return DirtyKeys(generation: generation, marksLostBefore: store.marksLost)
        }
    }

    /// Computes the result of every key changed since the last commit once and
    /// runs the steps after its aggregate. A failure dead-letters the result
    /// (the key and the result's JSON) with the source position of the key's
    /// last record: that record was applied to the state, the result is what failed.
    func emitDeferredResults() throws {
        guard dirtyKeys.contains(where: { !$0.isEmpty }) else { return }
        let pending = dirtyKeys
        dirtyKeys = newDirtyKeys()
        for (step, d) in pending.enumerated() where !d.isEmpty {
            guard case .aggregate(let store, let fold, _) = steps[step] else { continue }
            let fields = resultFields[step]
            for (key, last) in d.latest(marksLost: store.marksLost) {
                guard let state = store.stored(key) else { continue }
                currentOrigin = last.origin
                currentPosition = last.position
                emitIndex = 0
                let value = fold.result(state, reading: fields)
                let record = StreamRecord(key: key, value: value, timestamp: last.timestamp, origin: currentOrigin)
                do throws(RecordError) { try run(record, from: step + 1) } catch {
                    let o = last.origin
                    try deadLetter(KafkaMessage(topic: o.topic, partition: o.partition, offset: o.offset, key: Array(key.utf8),
                                                value: JSONValue.object(record.value).serialized(), timestamp: last.timestamp), error)
                }
            }
        }
    }
}
