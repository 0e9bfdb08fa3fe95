// A String key hashed by a fast hash of its bytes, for the maps a task reads per record.

import ByteArrays

/// A `String` key of a map a task reads once or more per record (a store's decoded values,
/// a combiner's partial states), hashed by a multiply-and-shift hash of its UTF-8 bytes (``ByteHash``)
/// instead of the standard library's SipHash (callgrind: a `[String: V]` lookup of a short key
/// took ~340 instructions, of which ~250 hashing).
///
/// Equal as `String`s are (canonical equivalence), and hashed consistently with that: a
/// plain-ASCII string is hashed from its bytes; so is a string that is canonically equivalent
/// to a plain-ASCII one (its only non-ASCII scalars are among the three whose canonical
/// decomposition is ASCII: U+037E GREEK QUESTION MARK, U+1FEF GREEK VARIA, U+212A KELVIN
/// SIGN), from the ASCII string it is equivalent to; any other string goes through the
/// standard library's `Hasher`, which hashes its normalized form. The map's per-instance seed
/// is mixed into every hash.
struct StoreKey: Hashable, Sendable, CustomStringConvertible {
    /// The key.
    let string: String

    @inline(__always)
    init(_ string: String) { self.string = string }

    var description: String { string }

    @inline(__always)
    static func == (a: StoreKey, b: StoreKey) -> Bool { a.string == b.string }

    func hash(into hasher: inout Hasher) { hasher.combine(_rawHashValue(seed: 0)) }

    /// The non-ASCII scalars whose canonical decomposition is one ASCII scalar, with it
    /// (found by comparing every scalar's `String` with every one- and two-byte ASCII string;
    /// `StoreKeyTests` checks the list the same way).
    static let asciiEquivalents: [UInt32: UInt8] = [0x037E: 0x3B, 0x1FEF: 0x60, 0x212A: 0x4B]

    @inline(__always)
    func _rawHashValue(seed: Int) -> Int {
        if case let h?? = string.utf8.withContiguousStorageIfAvailable({ Self.asciiHash($0, seed: seed) }) { return h }
        return Self.nonASCIIHash(string, seed: seed)
    }

    /// The hash of `bytes` when they are plain ASCII, `nil` otherwise.
    @inline(__always)
    static func asciiHash(_ bytes: UnsafeBufferPointer<UInt8>, seed: Int) -> Int? {
        let (h, or) = ByteHash.hash(bytes, seed: UInt64(bitPattern: Int64(seed)))
        return or & 0x8080_8080_8080_8080 == 0 ? Int(bitPattern: UInt(h)) : nil
    }

    /// A string with a non-ASCII byte: hashed from its ASCII equivalent when it has one, by
    /// the standard library's `Hasher` (its normalized form) otherwise. Most such keys have no
    /// ASCII equivalent: they are checked first, so nothing is built for them.
    @inline(never)
    static func nonASCIIHash(_ string: String, seed: Int) -> Int {
        guard string.unicodeScalars.allSatisfy({ $0.isASCII || asciiEquivalents[$0.value] != nil }) else {
            var hasher = Hasher()
            hasher.combine(seed)
            hasher.combine(string)
            return hasher.finalize()
        }
        let ascii = string.unicodeScalars.map { $0.isASCII ? UInt8($0.value) : asciiEquivalents[$0.value].unsafelyUnwrapped }
        return ascii.withUnsafeBufferPointer { asciiHash($0, seed: seed) }.unsafelyUnwrapped
    }
}
