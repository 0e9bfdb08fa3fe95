import Foundation
import Synchronization

/// Object keys a parser met, to reuse: 64 slots chosen by a hash of the key's bytes,
/// each holding the last key that hashed there (a hit compares the bytes). Pass one to
/// ``JSONValue/parse(_:keys:)-(UnsafeRawBufferPointer,_)`` for every record of a stream.
///
/// It also keeps the parser's working stacks from one parse to the next, so a parse of a
/// small object allocates only the object itself. Not `Sendable`: one reader owns it.
public struct JSONKeyCache {
    struct Slot: Sendable {
        var fingerprint: UInt64 = 1  // no plain-ASCII key has the low bit set
        /// The key's bytes, compared on a hit (a `String`'s would be copied out first).
        var bytes: [UInt8] = []
        var key = ""
    }

    var slots: [Slot]
    /// The parser's stacks between parses (`nil` in the unused cache).
    let stacks: ParserStacks?

    /// One key of ``shapeKeys``: its `String`, fingerprint and bytes (in ``shapeBytes``).
    struct ShapeKey {
        var key: String
        var fingerprint: UInt64
        var start: Int
        var count: Int
    }

    /// The keys of the last top-level object, in order, when every one was plain ASCII
    /// without escapes (empty otherwise): the records of one source list their fields in one
    /// order, so the parser compares each key's bytes with the key at its position here first
    /// and takes that `String` (no scan, hash or slot lookup; see `JSONParser.parseObject`).
    var shapeKeys: [ShapeKey] = []
    /// The bytes of ``shapeKeys``, one after the other.
    var shapeBytes: [UInt8] = []
    /// Records left before ``JSONValue/parseFlatObject(_:keys:)`` tries again after one
    /// that was not a flat object.
    var flatSkips = 0
    /// The keys of the last flat object (where each is in ``flatShapeBytes``, its length).
    var flatShape: [(start: Int, count: Int)] = []
    var flatShapeBytes: [UInt8] = []
    /// This cache and the generation of ``flatShape``.
    var flatShapeID: FlatJSONObject.Shape

    /// Makes `members` (with their fingerprints) the shape the next top-level object is
    /// compared with; no shape when a key is not plain ASCII.
    mutating func recordShape(_ members: UnsafeMutablePointer<JSONObject.Member>, _ fingerprints: UnsafeMutablePointer<UInt64>, _ n: Int) {
        shapeKeys.removeAll(keepingCapacity: true)
        shapeBytes.removeAll(keepingCapacity: true)
        for i in 0..<n {
            guard fingerprints[i] & 1 == 0 else {
                shapeKeys.removeAll(keepingCapacity: true)
                return
            }
            let start = shapeBytes.count
            shapeBytes.append(contentsOf: members[i].key.utf8)
            shapeKeys.append(ShapeKey(key: members[i].key, fingerprint: fingerprints[i], start: start, count: shapeBytes.count - start))
        }
    }

    /// Whether the string token at `p` (its opening quote; `end` is the end of the input) is
    /// exactly the shape's key `j`: its bytes, then the closing quote. The shape's keys hold no
    /// quote, backslash or control byte, so the bytes alone decide.
    @inline(__always)
    func shapeMatches(_ j: Int, _ p: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Bool {
        let s = shapeKeys[j]
        guard end - p > s.count + 1, p[s.count + 1] == ASCII.quote else { return false }
        return s.count == 0 || shapeBytes.withUnsafeBufferPointer { memcmp($0.baseAddress! + s.start, p + 1, s.count) == 0 }
    }

    /// An empty cache (64 slots).
    public init() {
        slots = Array(repeating: Slot(), count: 64)
        stacks = ParserStacks()
        flatShapeID = FlatJSONObject.Shape(cache: Self.caches.add(1, ordering: .relaxed).newValue, generation: 0)
    }

    /// Caches made so far (each one's number tells its shapes apart from another's).
    private static let caches = Atomic<UInt64>(0)

    /// A cache without slots: the parser makes every key (what `parse` without a cache
    /// does), and nothing is allocated.
    public static var unused: JSONKeyCache { JSONKeyCache(slots: []) }

    private init(slots: [Slot]) {
        self.slots = slots
        stacks = nil
        flatShapeID = FlatJSONObject.Shape(cache: 0, generation: 0)
    }

    /// The key of `n` plain-ASCII bytes at `p` whose fingerprint is `fingerprint`: the
    /// cached `String` when the slot holds these bytes, else a new one, cached.
    @inline(__always)
    mutating func key(_ fingerprint: UInt64, _ p: UnsafePointer<UInt8>, _ n: Int) -> String {
        let bytes = UnsafeBufferPointer(start: p, count: n)
        guard !slots.isEmpty else { return String(decoding: bytes, as: UTF8.self) }
        let i = Int(truncatingIfNeeded: fingerprint >> 58)
        if slots[i].fingerprint == fingerprint && slots[i].bytes.count == n
            && (n == 0 || slots[i].bytes.withUnsafeBufferPointer { memcmp($0.baseAddress!, p, n) == 0 }) {
            return slots[i].key
        }
        let key = String(decoding: bytes, as: UTF8.self)
        slots[i] = Slot(fingerprint: fingerprint, bytes: Array(bytes), key: key)
        return key
    }
}
