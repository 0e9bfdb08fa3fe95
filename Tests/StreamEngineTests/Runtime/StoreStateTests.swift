import Foundation
import Testing
import Zstd
import KafkaClient
import StreamEngineTesting
import ThreadExecutors
@testable import StreamEngine

@Suite("State: compact store entries and snapshots")
struct StoreStateTests {
    static let stats: JSONValue = ["orders": 2, "items": 5, "cents": 12345, "last": 1_733_000_000_000, "categories": ["books": 345, "électronique": 12000.5]]

    @Test("an entry gives back its value and expiry; setting one keeps the other")
    func entryRoundTrip() {
        var e = StoreEntry(value: Self.stats, expiresAt: 1_733_000_000_123)
        #expect(e.value == Self.stats)
        #expect(e.value.serializedString() == Self.stats.serializedString())
        #expect(e.expiresAt == 1_733_000_000_123)
        e.expiresAt = nil
        #expect(e.expiresAt == nil)
        #expect(e.value == Self.stats)
        e.expiresAt = -5
        #expect(e.expiresAt == -5)
        e.value = ["n": 1]
        #expect(e.value == ["n": 1])
        #expect(e.expiresAt == -5)
        #expect(StoreEntry(value: nil).value == .null)
        // Smaller than the JSON text of the value.
        #expect(StoreEntry(value: Self.stats).storedBytes < Self.stats.serialized().count)
    }

    @Test("entries compare and hash as their values do (member order ignored)")
    func entryEquality() {
        let a = StoreEntry(value: ["a": 1, "b": [true, "x"]])
        let b = StoreEntry(value: ["b": [true, "x"], "a": 1])
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a != StoreEntry(value: ["a": 1, "b": [true, "x"]], expiresAt: 7))
        #expect(a != StoreEntry(value: ["a": 2, "b": [true, "x"]]))
        #expect(Set([a, b]).count == 1)
    }

    @Test("a store gives the same answers whether its values are still decoded or already compact")
    func storeDecodedCache() {
        let store = KeyValueStore(name: "s", partition: 0)
        let n = KeyValueStore.decodedCacheLimit + 100
        for i in 0..<n { store.put("k\(i)", ["n": .number(Double(i))], expiresAt: i % 10 == 0 ? Int64(i) : nil) }
        // Updates of keys that may be cached or compact by now.
        for i in stride(from: 0, to: n, by: 7) { store.put("k\(i)", ["n": .number(Double(i + 1))], expiresAt: i % 10 == 0 ? Int64(i) : nil) }
        store.delete("k1")
        store.delete("k\(n - 1)")
        store.delete("never")
        #expect(store.get("k7") == ["n": 8])
        #expect(store.get("k\(n - 2)") == ["n": .number(Double(n - 2))])
        #expect(store.entry("k20") == StoreEntry(value: ["n": 20], expiresAt: 20))
        #expect(store.get("k1") == nil)
        #expect(store.count == n - 2)
        let all = store.allEntries
        #expect(all.count == n - 2)
        #expect(all["k14"]?.value == ["n": 15])
        #expect(all["k\(n - 1)"] == nil)
        let changes = store.takeChanges()
        #expect(changes.count == n)  // every key put (the deleted ones as tombstones), nothing for "never"
        #expect(changes.first { $0.key == "k1" }.map { $0.entry == nil } == true)
        #expect(!store.hasChanges)
        // After a flush, updates are seen again and marked changed.
        store.put("k2", "x")
        #expect(store.get("k2") == "x")
        #expect(store.takeChanges().map(\.key) == ["k2"])
        // Expiry reaches keys still decoded.
        store.put("fresh", 1, expiresAt: 5)
        let gone = Set(store.expire(streamTime: 50))
        #expect(gone.contains("fresh") && gone.contains("k50") && gone.contains("k0") && !gone.contains("k60"))
        #expect(store.get("fresh") == nil)
    }

    @Test("expiry finds every key whose time came, however the key got its expiry: put, update, restore, a whole replacement; keys without one stay")
    func expiryThroughEveryWrite() {
        let store = KeyValueStore(name: "s", partition: 0)
        for i in 0..<100 { store.put("plain-\(i)", .number(Double(i))) }
        #expect(store.expire(streamTime: .max - 1).isEmpty)
        store.put("put", 1, expiresAt: 200)
        store.update("updated", expiresAt: 100, initial: { 0 }) { $0 = 1 }
        store.restore("restored", StoreEntry(value: 2, expiresAt: 300))
        #expect(store.expire(streamTime: 99).isEmpty)
        #expect(store.expire(streamTime: 100) == ["updated"])
        #expect(store.expire(streamTime: 199).isEmpty)
        #expect(store.expire(streamTime: 250) == ["put"])
        // An expiry moved earlier by a later update is still found.
        store.update("restored", expiresAt: 260, initial: { 0 }) { $0 = 3 }
        #expect(store.expire(streamTime: 260) == ["restored"])
        store.replaceAll(["a": StoreEntry(value: 1, expiresAt: 50), "b": StoreEntry(value: 2)])
        #expect(store.expire(streamTime: 49).isEmpty)
        #expect(store.expire(streamTime: 50) == ["a"])
        #expect(store.get("b") == 2 && store.count == 1)
        // A key restored alone (the store's only expiring key) is found at its time.
        let restoredOnly = KeyValueStore(name: "r", partition: 0)
        restoredOnly.put("plain", 1)
        restoredOnly.restore("ttl", StoreEntry(value: 1, expiresAt: 70))
        #expect(restoredOnly.expire(streamTime: 69).isEmpty)
        #expect(restoredOnly.expire(streamTime: 70) == ["ttl"])
    }

    static func entries() -> [String: StoreEntry] {
        var out: [String: StoreEntry] = ["ttl": StoreEntry(value: 3, expiresAt: 1_733_000_000_000), "stats": StoreEntry(value: stats), "empty-key-value": StoreEntry(value: "")]
        out[""] = StoreEntry(value: [nil, -0.0, 0.1, ["deep": [[["x"]]]]])
        for i in 0..<300 { out["user-\(i)"] = StoreEntry(value: ["orders": .number(Double(i)), "s": .string(String(repeating: "é", count: i % 7))]) }
        return out
    }

    @Test("a snapshot reads back every entry, expiry included")
    func snapshotRoundTrip() throws {
        let dir = NSTemporaryDirectory() + "store-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/s/0.snapshot"
        let entries = Self.entries()
        try StoreSnapshot(store: "s", partition: 3, changelogOffset: 42, inputOffsets: ["in": 7], entries: entries).write(to: path)
        let read = try StoreSnapshot.read(from: path)
        #expect(read.entries == entries)
        #expect(read.entries["ttl"]?.expiresAt == 1_733_000_000_000)
        #expect(read.entries[""]?.value[1]?.doubleValue?.sign == .minus)
        #expect((read.store, read.partition, read.changelogOffset, read.inputOffsets) == ("s", 3, 42, ["in": 7]))
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path)).prefix(8)) == Array("SESNAP02".utf8))
    }

    /// A file of the given magic holding `body` after the header line, as the writer frames it.
    static func file(magic: String, entries: Int, body: [UInt8], at path: String) throws {
        var raw = Array(#"{"store":"s","partition":0,"changelogOffset":9,"entries":\#(entries),"inputOffsets":{"in":1}}"#.utf8) + [0x0A]
        raw += body
        let data = Array(magic.utf8) + (try ZstdCompressor(level: 3, checksum: true).compress(raw))
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(data)))
    }

    static func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

    @Test("a snapshot of the first format (JSON values) is still read")
    func snapshotV1() throws {
        let dir = NSTemporaryDirectory() + "store-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/0.snapshot"
        var body: [UInt8] = []
        for (key, value, exp) in [("alice", #"{"n":2,"tags":["x"]}"#, Int64(-1)), ("carol", "7", 1_733_000_000_000)] {
            body += Self.le(UInt64(key.utf8.count), 4) + Array(key.utf8)
            body += Self.le(UInt64(value.utf8.count), 4) + Array(value.utf8)
            body += Self.le(UInt64(bitPattern: exp), 8)
        }
        try Self.file(magic: "SESNAP01", entries: 2, body: body, at: path)
        let read = try StoreSnapshot.read(from: path)
        #expect(read.entries == ["alice": StoreEntry(value: ["n": 2, "tags": ["x"]]), "carol": StoreEntry(value: 7, expiresAt: 1_733_000_000_000)])
        #expect(read.changelogOffset == 9)
    }

    @Test("a snapshot entry that is not a well-formed compact entry is reported with its key")
    func snapshotBadEntry() throws {
        let dir = NSTemporaryDirectory() + "store-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/0.snapshot"
        // "bob": an expiry flag, then an array claiming 5 elements with only one present.
        let entry: [UInt8] = [0x00, 0x06, 0x05, 0x81]
        let body = Self.le(3, 4) + Array("bob".utf8) + Self.le(UInt64(entry.count), 4) + entry
        try Self.file(magic: "SESNAP02", entries: 1, body: body, at: path)
        #expect {
            try StoreSnapshot.read(from: path)
        } throws: { error in
            guard let e = error as? SnapshotError else { return false }
            return e.description.contains(path) && e.description.contains("bob")
        }
        // The same entry well-formed reads.
        let good: [UInt8] = [0x00, 0x06, 0x01, 0x81]
        try Self.file(magic: "SESNAP02", entries: 1, body: Self.le(3, 4) + Array("bob".utf8) + Self.le(4, 4) + good, at: path)
        #expect(try StoreSnapshot.read(from: path).entries == ["bob": StoreEntry(value: [1])])
    }

    @Test("a restore split into ranges replayed at once ends as the one-range replay: updates, tombstones, TTLs, uncommitted records")
    func restoreInRanges() async throws {
        let h = try EngineTestHarness()
        try h.createTopic("c", partitions: 2)
        // 1,200 records for 90 keys on partition 1: updates, a tombstone every 7th record,
        // a TTL every 5th, and commits whose tag is past the committed offset (to skip).
        var records: [ProducerRecord] = []
        var expected: [String: StoreEntry] = [:]
        for i in 0..<1200 {
            let key = "k\(i * 37 % 90)"
            let committedTag = i % 100 < 90
            let tag = CommitTag(["in": committedTag ? Int64(i) : 5_000 + Int64(i)])
            let entry: StoreEntry? = i % 7 == 3 ? nil : StoreEntry(value: ["i": .number(Double(i)), "s": .string("v\(i)")], expiresAt: i % 5 == 0 ? Int64(i) : nil)
            records.append(ChangelogCodec.record(topic: "c", partition: 1, key: key, entry: entry, tag: tag))
            if committedTag { expected[key] = entry }
        }
        try await h.produce(records)
        var restorer = StoreRestorer(kafkaConfig: h.kafka.clientConfig, logger: h.logger)
        restorer.recordsPerRange = 100
        #expect(StoreRestorer.split(0..<1200, parts: 4) == [0..<300, 300..<600, 600..<900, 900..<1200])
        #expect(StoreRestorer.split(10..<13, parts: 4) == [10..<13])
        let committed = ["in": Int64(4_999)]
        let split = try await restorer.restore(store: "s", partition: 1, changelogTopic: "c", snapshotPath: nil, committed: committed)
        let single = try await runOnDedicatedThread("test-restore") { [restorer] in
            try restorer.restore(store: "s", partition: 1, changelogTopic: "c", snapshotPath: nil, committed: committed)
        }
        let wanted = expected.compactMapValues { $0 }
        #expect(split.entries == wanted)
        #expect(single.entries == wanted)
        #expect(split.entries["k0"]?.expiresAt == single.entries["k0"]?.expiresAt)
        #expect(split.report.changelogRecords == single.report.changelogRecords)
        #expect(split.report.skippedUncommitted == single.report.skippedUncommitted)
        #expect(split.report.skippedUncommitted == 120)
        #expect(split.report.keys == wanted.count)
    }

    @Test("ranges longer than the sizing sample restore the same store as one consumer: hot keys, one-write keys, tombstones across ranges")
    func restoreLongRanges() async throws {
        let h = try EngineTestHarness()
        try h.createTopic("c", partitions: 1)
        // 40,000 records: the first half rewrites 50 hot keys, the second half writes 20,000
        // keys once each; every 11th record of the second half deletes a hot key.
        var records: [ProducerRecord] = []
        var expected: [String: StoreEntry?] = [:]
        for i in 0..<40_000 {
            let key = i < 20_000 ? "hot\(i % 50)" : (i % 11 == 0 ? "hot\(i % 50)" : "u\(i)")
            let entry: StoreEntry? = i >= 20_000 && i % 11 == 0 ? nil : StoreEntry(value: ["i": .number(Double(i))])
            records.append(ChangelogCodec.record(topic: "c", partition: 0, key: key, entry: entry, tag: CommitTag(["in": Int64(i)])))
            expected[key] = entry
        }
        try await h.produce(records)
        var restorer = StoreRestorer(kafkaConfig: h.kafka.clientConfig, logger: h.logger)
        restorer.recordsPerRange = 10_000
        let committed = ["in": Int64(40_000)]
        let split = try await restorer.restore(store: "s", partition: 0, changelogTopic: "c", snapshotPath: nil, committed: committed)
        let single = try await runOnDedicatedThread("test-restore") { [restorer] in
            try restorer.restore(store: "s", partition: 0, changelogTopic: "c", snapshotPath: nil, committed: committed)
        }
        let wanted = expected.compactMapValues { $0 }
        #expect(wanted.count > 17_000)
        #expect(split.entries == wanted)
        #expect(single.entries == wanted)
        #expect(split.report.changelogRecords == 40_000)
        #expect(split.report.keys == wanted.count)
    }

    @Test("the restore sizes a range's table from the distinct share of its first records")
    func restoreSizing() {
        var oneWritePerKey = StoreRestorer.KeyCountEstimate(records: 100_000)
        var hot = StoreRestorer.KeyCountEstimate(records: 100_000)
        var short = StoreRestorer.KeyCountEstimate(records: 5_000)
        var reserved: [Int?] = [nil, nil, nil]
        for n in 1...StoreRestorer.KeyCountEstimate.sample {
            if let r = oneWritePerKey.note(keys: n) { reserved[0] = r }
            if let r = hot.note(keys: min(n, 64)) { reserved[1] = r }
            if let r = short.note(keys: n) { reserved[2] = r }
        }
        #expect(reserved[0] == 100_000)  // capped at the range's records
        #expect(reserved[1] == Int((100_000.0 * 64 / Double(StoreRestorer.KeyCountEstimate.sample) * 1.05).rounded(.up)))
        #expect(reserved[2] == nil)  // a range no longer than the sample is not sized
        #expect(oneWritePerKey.note(keys: 9_000) == nil)  // once only
    }

    @Test("a changelog value is framed: the marker, the tag, the entry's bytes; a tombstone keeps the tag header; forms of earlier versions still restore; a malformed value is an error")
    func changelogValueForms() async throws {
        let entry = StoreEntry(value: ["orders": 2, "categories": ["books": 1250]], expiresAt: 1_700_000_000_000)
        let record = ChangelogCodec.record(topic: "c", partition: 0, key: "u1", entry: entry, tag: CommitTag(["in": 4]))
        // The wire format, byte for byte (records written now must read in later versions).
        let expiry: [UInt8] = [1, 0x00, 0x68, 0xE5, 0xCF, 0x8B, 0x01, 0x00, 0x00]  // 1_700_000_000_000, little-endian
        #expect(record.value == [0x7F, 4, 0] + Array("in=4".utf8) + expiry + JSONCompact.encoded(entry.value))
        #expect(record.headers.isEmpty)
        let tombstone = ChangelogCodec.record(topic: "c", partition: 0, key: "u0", entry: nil, tag: CommitTag(["in": 4]))
        #expect(tombstone.value == nil)
        #expect(tombstone.headers.map(\.name) == [ChangelogCodec.tagHeader])
        #expect(tombstone.headers.first?.stringValue == "in=4")

        // What a consumer gets back: the framed record, a compact one with header tags (the
        // previous version) and a JSON-text one (the first versions).
        let h = try EngineTestHarness()
        try h.createTopic("c", partitions: 1)
        let headerForm = ProducerRecord(
            topic: "c", partition: 0, key: Array("u4".utf8), value: JSONCompact.encoded(["orders": 3]),
            headers: [KafkaHeader(ChangelogCodec.tagHeader, "in=5"), KafkaHeader(ChangelogCodec.expiresHeader, "1700000000001")])
        let legacy = ProducerRecord(
            topic: "c", partition: 0, key: Array("u2".utf8), value: Array(#" {"orders": 1.5, "s": "\u00e9"}"#.utf8),
            headers: [KafkaHeader(ChangelogCodec.tagHeader, "in=5")])
        try await h.produce([record, headerForm, legacy])
        let restorer = StoreRestorer(kafkaConfig: h.kafka.clientConfig, logger: h.logger)
        let restored = try await restorer.restore(store: "s", partition: 0, changelogTopic: "c", snapshotPath: nil, committed: nil)
        #expect(restored.entries["u1"] == entry)
        #expect(restored.entries["u1"]?.expiresAt == 1_700_000_000_000)
        #expect(restored.entries["u4"] == StoreEntry(value: ["orders": 3], expiresAt: 1_700_000_000_001))
        #expect(restored.entries["u2"] == StoreEntry(value: ["orders": 1.5, "s": "é"]))

        // A framed value cut short, in its entry or in its tag: the restore fails naming the record.
        for (key, bytes) in [("u3", Array(record.value!.dropLast())), ("u5", Array(record.value!.prefix(5)))] {
            let topic = "cut-\(key)"
            try h.createTopic(topic, partitions: 1)
            var cut = record
            cut.topic = topic
            cut.value = bytes
            cut.key = Array(key.utf8)
            try await h.produce([cut])
            await #expect {
                _ = try await restorer.restore(store: "s", partition: 0, changelogTopic: topic, snapshotPath: nil, committed: nil)
            } throws: { error in
                "\(error)".contains("truncated or malformed")
            }
        }
    }

    @Test("a changelog of the header form (earlier versions) restores the same store as the framed form: tags honoured, TTLs, tombstones")
    func headerFormRestoresAlike() async throws {
        let h = try EngineTestHarness()
        try h.createTopic("framed", partitions: 1)
        try h.createTopic("headers", partitions: 1)
        var framed: [ProducerRecord] = []
        var headerForm: [ProducerRecord] = []
        for i in 0..<600 {
            let key = "k\(i * 13 % 40)"
            // Every tenth commit never completed: its tag is past the committed offset.
            let tag = CommitTag(["in": i % 10 == 9 ? 10_000 + Int64(i) : Int64(i)])
            let entry: StoreEntry? = i % 9 == 4 ? nil : StoreEntry(value: ["i": .number(Double(i))], expiresAt: i % 4 == 0 ? 1_000 + Int64(i) : nil)
            framed.append(ChangelogCodec.record(topic: "framed", partition: 0, key: key, entry: entry, tag: tag))
            var headers = [KafkaHeader(ChangelogCodec.tagHeader, tag.description)]
            if let exp = entry?.expiresAt { headers.append(KafkaHeader(ChangelogCodec.expiresHeader, String(exp))) }
            headerForm.append(ProducerRecord(topic: "headers", partition: 0, key: Array(key.utf8), value: entry.map { Array($0.compactValue) }, headers: headers))
        }
        try await h.produce(framed + headerForm)
        let restorer = StoreRestorer(kafkaConfig: h.kafka.clientConfig, logger: h.logger)
        let committed = ["in": Int64(1_000)]
        let a = try await restorer.restore(store: "s", partition: 0, changelogTopic: "framed", snapshotPath: nil, committed: committed)
        let b = try await restorer.restore(store: "s", partition: 0, changelogTopic: "headers", snapshotPath: nil, committed: committed)
        #expect(a.entries == b.entries)
        #expect(a.entries.count > 30)
        #expect(a.entries.values.contains { $0.expiresAt != nil })
        #expect(a.report.skippedUncommitted == 60)
        #expect(b.report.skippedUncommitted == 60)
        // ChangelogCodec.decode (the standby's reader) reads both forms alike.
        for (f, o) in zip(framed, headerForm) {
            let x = try ChangelogCodec.decode(KafkaMessage(topic: f.topic, partition: 0, offset: 0, key: f.key, value: f.value, headers: f.headers))
            let y = try ChangelogCodec.decode(KafkaMessage(topic: o.topic, partition: 0, offset: 0, key: o.key, value: o.value, headers: o.headers))
            #expect(x.key == y.key && x.entry == y.entry && x.tag == y.tag)
        }
    }
}

@Suite("State: a key changed in place")
struct StoreUpdateTests {
    struct Rejected: Error {}

    @Test("update starts from initial() or the current value, decoded or compact; a throw leaves the key as it was")
    func update() throws {
        let store = KeyValueStore(name: "s", partition: 0)
        try store.update("a", initial: { 0 }) { (v: inout JSONValue) throws(Rejected) in v = .number((v.doubleValue ?? 0) + 1) }
        try store.update("a", expiresAt: 50, initial: { 0 }) { (v: inout JSONValue) throws(Rejected) in v = .number((v.doubleValue ?? 0) + 1) }
        #expect(store.get("a") == 2)
        #expect(store.entry("a")?.expiresAt == 50)
        // Compact now (a read of the whole store flushes the decoded values).
        #expect(store.count == 1)
        try store.update("a", initial: { 0 }) { (v: inout JSONValue) throws(Rejected) in v = .number((v.doubleValue ?? 0) + 1) }
        #expect(store.get("a") == 3)
        #expect(store.entry("a")?.expiresAt == nil)
        #expect(throws: Rejected.self) { try store.update("a", initial: { 0 }) { (_: inout JSONValue) throws(Rejected) in throw Rejected() } }
        #expect(throws: Rejected.self) { try store.update("b", initial: { 0 }) { (_: inout JSONValue) throws(Rejected) in throw Rejected() } }
        #expect(store.get("a") == 3)
        #expect(store.get("b") == nil)
        #expect(Set(store.takeChanges().map(\.key)) == ["a"])
    }

    @Test("values kept decoded after a commit: only keys changed since are changes, with their new values; a delete, a restore and a failed update see the committed value")
    func keptDecodedAcrossCommits() throws {
        let store = KeyValueStore(name: "s", partition: 0)
        func add(_ key: String, _ n: Double) throws {
            try store.update(key, initial: { 0 }) { (v: inout JSONValue) throws(Rejected) in v = .number((v.doubleValue ?? 0) + n) }
        }
        for k in ["a", "b", "c", "d"] { try add(k, 1) }
        #expect(Set(store.takeChanges().map(\.key)) == ["a", "b", "c", "d"])
        #expect(!store.hasChanges, "nothing changed since the commit")
        #expect(store.takeChanges().isEmpty)
        try add("a", 10)
        #expect(store.hasChanges)
        #expect(throws: Rejected.self) { try store.update("b", initial: { 0 }) { (_: inout JSONValue) throws(Rejected) in throw Rejected() } }
        store.delete("c")
        store.restore("d", StoreEntry(value: 7))
        let changes = Dictionary(uniqueKeysWithValues: store.takeChanges().map { ($0.key, $0.entry?.value) })
        #expect(changes.count == 2 && changes["a"] == .some(11) && changes["c"] == .some(nil), "\(changes)")
        #expect(store.get("a") == 11 && store.get("b") == 1 && store.get("c") == nil && store.get("d") == 7)
        #expect(store.allEntries.mapValues(\.value) == ["a": 11, "b": 1, "d": 7])
        // A new key finding the cache full empties it; the values are the same.
        for i in 0..<KeyValueStore.decodedCacheLimit + 1 { try add("k\(i)", 1) }
        try add("a", 1)
        #expect(store.get("a") == 12 && store.get("b") == 1 && store.get("k0") == 1)
        let next = Set(store.takeChanges().map(\.key))
        #expect(next.count == KeyValueStore.decodedCacheLimit + 2 && next.contains("a") && !next.contains("b"))
    }
}
