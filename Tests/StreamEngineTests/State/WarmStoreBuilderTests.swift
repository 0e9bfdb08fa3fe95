import StreamValues
import Testing
@testable import StreamEngine

/// A standby's warm copy must equal what a restore from the whole changelog
/// gives with the same committed offsets: the last record of each key whose
/// commit tag the offsets cover.
@Suite("Standby warm copies follow the restore's rule")
struct WarmStoreBuilderTests {
    static func record(_ offset: Int64, _ key: String, _ value: Int?, tag input: Int64) -> ChangelogRecord {
        ChangelogRecord(partition: 0, offset: offset, key: key, entry: value.map { StoreEntry(value: .number(Double($0))) },
                        tag: CommitTag(["in": input]))
    }

    /// The restore's rule, applied to the whole log at once.
    static func restored(_ log: [ChangelogRecord], committed: [String: Int64]) -> [String: StoreEntry] {
        var out: [String: StoreEntry] = [:]
        for r in log where r.tag?.isCommitted(by: committed) ?? false { out[r.key] = r.entry }
        return out
    }

    /// The copy handed over, then its pending records applied as the restore applies them.
    static func handedOver(_ b: WarmStoreBuilder, committed: [String: Int64]) -> [String: StoreEntry] {
        let copy = b.copy()
        var out = copy.entries
        for r in copy.pending where r.tag?.isCommitted(by: committed) ?? false { out[r.key] = r.entry }
        return out
    }

    @Test("Uncommitted records wait; a later committed record of the key supersedes them; a crashed owner's records never count unless covered")
    func followsTheRule() {
        // Owner 1 commits at in=10, writes k1/k2 for a commit at in=20 that never completes (crash);
        // owner 2 replays from 10, commits at in=15 (k1 again), then at in=30.
        let log = [
            Self.record(0, "k1", 1, tag: 5), Self.record(1, "k2", 1, tag: 5),
            Self.record(2, "k1", 2, tag: 19), Self.record(3, "k2", 2, tag: 19), Self.record(4, "k3", 9, tag: 19),
            Self.record(5, "k1", 3, tag: 14),
            Self.record(6, "k2", nil, tag: 29), Self.record(7, "k4", 4, tag: 29),
        ]
        var committed: [String: Int64] = ["in": 10]
        var b = WarmStoreBuilder(store: "s", partition: 0)
        for r in log[..<5] { b.add(r, committed: committed) }
        #expect(b.entries == Self.restored(Array(log[..<5]), committed: committed))
        #expect(b.pendingCount == 3)
        committed["in"] = 15
        b.resolve(committed: committed)
        b.add(log[5], committed: committed)
        // k1's pending record (tag 19, offset 2) is superseded by the committed one at offset 5.
        #expect(b.entries == Self.restored(Array(log[..<6]), committed: committed))
        #expect(Self.handedOver(b, committed: committed) == Self.restored(Array(log[..<6]), committed: committed))
        for r in log[6...] { b.add(r, committed: committed) }
        // Handed over before the last commit completed: the new owner's restore decides with its offsets.
        #expect(Self.handedOver(b, committed: committed) == Self.restored(log, committed: committed))
        committed["in"] = 30
        #expect(Self.handedOver(b, committed: committed) == Self.restored(log, committed: committed))
        b.resolve(committed: committed)
        #expect(b.entries == Self.restored(log, committed: committed))
        #expect(b.pendingCount == 0)
        #expect(b.entries["k2"] == nil && b.entries["k3"]?.value == .number(9) && b.entries["k4"]?.value == .number(4))
        #expect(b.nextOffset == 8)
    }

    @Test("Random logs: after any prefix and any committed offsets, the copy handed over restores to exactly what a full restore gives")
    func randomLogs() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<300 {
            var log: [ChangelogRecord] = []
            var input: Int64 = 0
            for offset in 0..<Int64(rng.next() % 40) {
                if rng.next() % 5 == 0 { input = max(0, input - Int64(rng.next() % 6)) } else { input += Int64(rng.next() % 3) }
                let key = "k\(rng.next() % 5)"
                log.append(Self.record(offset, key, rng.next() % 7 == 0 ? nil : Int(rng.next() % 100), tag: input))
            }
            var committed: [String: Int64] = [:]
            var b = WarmStoreBuilder(store: "s", partition: 0)
            for r in log {
                if rng.next() % 4 == 0 {
                    committed["in"] = (committed["in"] ?? 0) + Int64(rng.next() % 4)
                    b.resolve(committed: committed)
                }
                b.add(r, committed: committed)
            }
            let final: [String: Int64] = ["in": (committed["in"] ?? 0) + Int64(rng.next() % 4)]
            #expect(Self.handedOver(b, committed: final) == Self.restored(log, committed: final))
        }
    }
}
