import Testing
@testable import StreamEngine

@Suite("State: store keys hashed from their bytes, equal as strings are")
struct StoreKeyTests {
    @Test("the scalars whose canonical equivalent is ASCII are exactly the ones the hash maps (every scalar compared with every 1- and 2-byte ASCII string)")
    func asciiEquivalentsAreComplete() {
        var ascii: [String: String] = [:]
        for a in 0..<128 {
            let one = String(UnicodeScalar(UInt8(a)))
            ascii[one] = one
            for b in 0..<128 { let two = one + String(UnicodeScalar(UInt8(b))); ascii[two] = two }
        }
        var found: [UInt32: UInt8] = [:]
        for v in UInt32(0x80)...0x10FFFF {
            guard let scalar = UnicodeScalar(v), let equal = ascii[String(scalar)] else { continue }
            #expect(equal.utf8.count == 1, "U+\(String(v, radix: 16)) is equivalent to two ASCII bytes: \(Array(equal.utf8))")
            found[v] = equal.utf8.first
        }
        #expect(found == StoreKey.asciiEquivalents)
    }

    @Test("keys equal as strings hash alike, whatever their bytes: ASCII, canonically equivalent forms, a map's seed")
    func equalKeysHashAlike() {
        let pairs: [(String, String)] = [
            ("K", "\u{212A}"),  // KELVIN SIGN
            ("user;42`K", "user\u{037E}42\u{1FEF}\u{212A}"),
            ("café", "cafe\u{0301}"),  // precomposed and decomposed é
            ("\u{AC00}", "\u{1100}\u{1161}"),  // a Hangul syllable and its jamo
            ("u-5414", "u-" + String(5414)),
            ("a-key-longer-than-fifteen-bytes", "a-key-longer-than-" + "fifteen-bytes"),
            ("", ""),
        ]
        for (a, b) in pairs {
            #expect(a == b)
            #expect(StoreKey(a) == StoreKey(b))
            for seed in [0, 1, -7, 0x5EED_5EED] {
                #expect(StoreKey(a)._rawHashValue(seed: seed) == StoreKey(b)._rawHashValue(seed: seed), "\(a) / \(b), seed \(seed)")
            }
            #expect(StoreKey(a).hashValue == StoreKey(b).hashValue)
        }
        var map: [StoreKey: Int] = [:]
        for (a, _) in pairs { map[StoreKey(a), default: 0] += 1 }
        for (_, b) in pairs { map[StoreKey(b), default: 0] += 1 }
        #expect(map.count == pairs.count)
        #expect(map.values.allSatisfy { $0 == 2 })
    }

    @Test("different keys rarely share a hash: 100,000 user ids, every bucket of a 2^17 table within a few")
    func spreadsKeys() {
        var hashes = Set<Int>()
        var buckets = [Int](repeating: 0, count: 1 << 17)
        for i in 0..<100_000 {
            let h = StoreKey("u-\(i)")._rawHashValue(seed: 12345)
            hashes.insert(h)
            buckets[h & ((1 << 17) - 1)] += 1
        }
        #expect(hashes.count == 100_000)
        #expect(buckets.max()! <= 10)
    }

    @Test("a store sees one key for two spellings of it: an update of each adds to the same value")
    func storeMergesEquivalentKeys() throws {
        let store = KeyValueStore(name: "s", partition: 0)
        for key in ["K", "\u{212A}", "cafe\u{0301}", "café"] {
            store.update(key, initial: { .number(0) }) { (v: inout JSONValue) in v = .number((v.doubleValue ?? 0) + 1) }
        }
        #expect(store.count == 2)
        #expect(store.get("K") == .number(2))
        #expect(store.get("café") == .number(2))
        #expect(store.takeChanges().count == 2)
    }
}
