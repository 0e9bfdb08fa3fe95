// A fast hash of short byte strings, for hash tables within one process.

/// A 64-bit multiply-and-shift hash of bytes, a word (8 bytes) at a time: for tables keyed by
/// short byte strings (JSON keys, store keys) where SipHash costs more than the lookup. Not a
/// keyed hash: a table whose keys come from outside mixes in a seed of its own.
public enum ByteHash {
    /// The hash of `bytes`, mixed with `seed`, and the bitwise OR of the bytes taken a word at
    /// a time (`& 0x8080_8080_8080_8080` is 0 exactly when every byte is ASCII).
    @inlinable @inline(__always)
    public static func hash(_ bytes: UnsafeBufferPointer<UInt8>, seed: UInt64) -> (hash: UInt64, orOfWords: UInt64) {
        let n = bytes.count
        var h = seed ^ (UInt64(truncatingIfNeeded: n) &* 0x9E37_79B9_7F4A_7C15)
        var or: UInt64 = 0
        var i = 0
        if n > 0, let p = bytes.baseAddress {
            let raw = UnsafeRawPointer(p)
            while i + 8 <= n {
                let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                or |= w
                h = (h ^ w) &* 0xBF58_476D_1CE4_E5B9
                h ^= h >> 29
                i += 8
            }
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                tail |= UInt64(p[i]) << shift
                shift += 8
                i += 1
            }
            or |= tail
            h ^= tail
        }
        h = h &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
        h = h &* 0xD6E8_FEB8_6659_FD93
        return (h ^ (h >> 32), or)
    }
}
