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
        /// The topic names and input-position keys the marks refer to, by index.
        private var names: [String] = []
        /// The last topic and position key looked up in `names` (each record names the same).
        private var lastTopic: (name: String, index: Int32)?
        private var lastPositionKey: (name: String, index: Int32)?

        /// A changed key's last record, as plain values: writing it per record retains and
        /// releases nothing, and an entry (key and mark) takes 56 bytes where the strings made ~96.
        struct Mark {
            var timestamp: Int64
            var offset: Int64
            var positionValue: Int64
            var partition: Int32
            /// Index of the origin's topic in `names`.
            var topic: Int32
            /// Index of the input position's key in `names`; -1 without a position.
            var positionKey: Int32
        }

        /// What a mark says, with its names.
        struct Last {
            var timestamp: Int64
            var origin: RecordOrigin
            var position: InputPosition?
        }

        init(generation: UInt64 = 0, marksLostBefore: Int = 0) {
            self.generation = generation
            self.marksLostBefore = marksLostBefore
        }

        private static func index(of name: String, in names: inout [String], last: inout (name: String, index: Int32)?) -> Int32 {
            if let l = last, l.name == name { return l.index }
            let i: Int
            if let found = names.firstIndex(of: name) { i = found } else { i = names.count; names.append(name) }
            last = (name, Int32(i))
            return Int32(i)
        }

        /// Notes a change of `key` by a record of `timestamp` from `origin` at `position`, whose
        /// mark in the store is `tag`: the entry it points to is updated in place, or a new entry
        /// is added and `tag` pointed at it (the key's one lookup is the store's).
        mutating func mark(_ tag: inout UInt64, key: String, timestamp: Int64, origin: RecordOrigin, position: InputPosition?) {
            let topic = Self.index(of: origin.topic, in: &names, last: &lastTopic)
            var positionKey: Int32 = -1
            if let position { positionKey = Self.index(of: position.key, in: &names, last: &lastPositionKey) }
            let mark = Mark(
                timestamp: timestamp, offset: origin.offset, positionValue: position?.value ?? 0, partition: origin.partition,
                topic: topic, positionKey: positionKey)
            if tag >> 32 == generation, case let i = Int(tag & 0xFFFF_FFFF), i < entries.count {
                entries[i].mark = mark
            } else {
                tag = generation << 32 | UInt64(entries.count)
                entries.append((key, mark))
            }
        }

        /// What `mark` says, with its names.
        func last(_ mark: Mark) -> Last {
            let topic = names[Int(mark.topic)]
            return Last(
                timestamp: mark.timestamp, origin: RecordOrigin(topic: topic, partition: mark.partition, offset: mark.offset),
                position: mark.positionKey < 0 ? nil : InputPosition(key: names[Int(mark.positionKey)], value: mark.positionValue))
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
            for (key, mark) in d.latest(marksLost: store.marksLost) {
                guard let state = store.stored(key) else { continue }
                let last = d.last(mark)
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
