// A compact binary encoding of JSONValue: what state stores keep in memory and snapshots hold.

/// A compact, self-delimiting binary encoding of ``JSONValue`` — smaller than JSON text and
/// decoded without parsing (no number or escape conversion, no UTF-8 validation beyond
/// `String(decoding:)`'s repair).
///
/// One value is a tag byte, then its payload:
///
/// | tag | value | payload |
/// |---|---|---|
/// | `0x00` | `null` | — |
/// | `0x01` / `0x02` | `false` / `true` | — |
/// | `0x03` | an integral number within ±2^53 (not `-0`) | zigzag LEB128 varint |
/// | `0x04` | any other number | 8 bytes, the `Double`'s bit pattern little-endian |
/// | `0x05` | a string | varint byte count, UTF-8 |
/// | `0x06` | an array | varint element count, the elements |
/// | `0x07` | an object | varint member count, per member: varint key byte count, key UTF-8, value |
/// | `0x80`–`0xFF` | the integers 0–127 | — (the low 7 bits) |
///
/// Objects keep their member order; numbers round-trip exactly (the same `Double`, `-0`
/// included). Decoding trusts the bytes: decode only what ``encode(_:into:)`` wrote, or what
/// ``validatedLength(of:)`` accepted.
public enum JSONCompact {
    static let null: UInt8 = 0x00
    static let falseTag: UInt8 = 0x01
    static let trueTag: UInt8 = 0x02
    static let int: UInt8 = 0x03
    static let double: UInt8 = 0x04
    static let string: UInt8 = 0x05
    static let array: UInt8 = 0x06
    static let object: UInt8 = 0x07
    static let smallInt: UInt8 = 0x80

    /// The compact encoding of `value`.
    public static func encoded(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        encode(value, into: &out)
        return out
    }

    /// Appends the compact encoding of `value` to `out`.
    public static func encode(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(null)
        case .bool(let b): out.append(b ? trueTag : falseTag)
        case .number(let d): encodeNumber(d, into: &out)
        case .string(let s):
            out.append(string)
            appendString(s, into: &out)
        case .array(let elements):
            out.append(array)
            appendVarint(UInt64(elements.count), to: &out)
            for e in elements { encode(e, into: &out) }
        case .object(let o):
            out.append(object)
            appendVarint(UInt64(o.members.count), to: &out)
            for m in o.members {
                appendString(m.key, into: &out)
                encode(m.value, into: &out)
            }
        }
    }

    /// The number of bytes ``encode(_:into:)`` writes for `value` (to reserve them first).
    public static func encodedSize(_ value: JSONValue) -> Int {
        switch value {
        case .null, .bool: return 1
        case .number(let d):
            if let i = integral(d) {
                return i >= 0 && i < 128 ? 1 : 1 + varintSize(UInt64(bitPattern: (i << 1) ^ (i >> 63)))
            }
            return 9
        case .string(let s):
            let n = s.utf8.count
            return 1 + varintSize(UInt64(n)) + n
        case .array(let elements):
            var n = 1 + varintSize(UInt64(elements.count))
            for e in elements { n += encodedSize(e) }
            return n
        case .object(let o):
            var n = 1 + varintSize(UInt64(o.members.count))
            for m in o.members {
                let k = m.key.utf8.count
                n += varintSize(UInt64(k)) + k + encodedSize(m.value)
            }
            return n
        }
    }

    @inline(__always)
    static func varintSize(_ v: UInt64) -> Int {
        var v = v
        var n = 1
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }

    /// `d` as an integer when the compact form stores it as one: integral, within ±2^53, not `-0`.
    @inline(__always)
    static func integral(_ d: Double) -> Int64? {
        guard d >= -9_007_199_254_740_992, d <= 9_007_199_254_740_992, d.rounded(.towardZero) == d,
              !(d == 0 && d.sign == .minus) else { return nil }
        return Int64(d)
    }

    /// Appends the encoding of a number (what ``encode(_:into:)`` writes for `.number(d)`).
    @inline(__always)
    public static func encodeNumber(_ d: Double, into out: inout [UInt8]) {
        if let i = integral(d) {
            if i >= 0 && i < 128 {
                out.append(smallInt | UInt8(i))
            } else {
                out.append(int)
                appendVarint(UInt64(bitPattern: (i << 1) ^ (i >> 63)), to: &out)
            }
        } else {
            out.append(double)
            let bits = d.bitPattern
            for b in 0..<8 { out.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(b)))) }
        }
    }

    /// Appends an object's tag and member count: the caller appends each member's key
    /// (``appendString(_:into:)``) and value after it (a value encoded without a tree).
    public static func appendObjectHeader(memberCount: Int, into out: inout [UInt8]) {
        out.append(object)
        appendVarint(UInt64(memberCount), to: &out)
    }

    /// Appends `null`.
    public static func appendNull(into out: inout [UInt8]) { out.append(null) }

    /// Appends a varint byte count and the UTF-8 of `s` (the payload of a string tag, and an object key).
    @inline(__always)
    public static func appendString(_ s: String, into out: inout [UInt8]) {
        var s = s
        s.withUTF8 { utf8 in
            appendVarint(UInt64(utf8.count), to: &out)
            out.append(contentsOf: utf8)
        }
    }

    /// Appends `v` as an unsigned LEB128 varint.
    @inline(__always)
    public static func appendVarint(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// Decodes the value at the start of `bytes` (which ``encode(_:into:)`` wrote).
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> JSONValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .null }
        var reader = Reader(base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        return reader.value()
    }

    /// Decodes the value at the start of `bytes` (which ``encode(_:into:)`` wrote).
    public static func decode(_ bytes: [UInt8]) -> JSONValue {
        bytes.withUnsafeBytes { decode($0) }
    }

    /// The length of the well-formed encoded value at the start of `bytes`, or `nil` when the
    /// bytes are truncated, hold an unknown tag or nest deeper than ``JSONValue/maxNestingDepth``.
    /// Strings are not checked for UTF-8 (decoding repairs them).
    public static func validatedLength(of bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        var reader = Reader(base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        guard reader.skipValue(depth: 0) else { return nil }
        return reader.pos
    }

    struct Reader {
        let base: UnsafePointer<UInt8>
        let count: Int
        var pos = 0

        /// A varint (0 when malformed: only validated bytes are decoded).
        @inline(__always)
        mutating func varint() -> UInt64 { checkedVarint() ?? 0 }

        /// A length or element count, clamped to the bytes left (each element takes at least one).
        @inline(__always)
        mutating func length() -> Int {
            let n = varint()
            return n > UInt64(count - pos) ? count - pos : Int(n)
        }

        mutating func string() -> String {
            let n = length()
            let end = pos + n
            let s = String(decoding: UnsafeBufferPointer(start: base + pos, count: end - pos), as: UTF8.self)
            pos = end
            return s
        }

        mutating func value() -> JSONValue {
            guard pos < count else { return .null }
            let tag = base[pos]
            pos += 1
            if tag >= JSONCompact.smallInt { return .number(Double(tag & 0x7F)) }
            switch tag {
            case JSONCompact.falseTag: return .bool(false)
            case JSONCompact.trueTag: return .bool(true)
            case JSONCompact.int:
                let z = varint()
                return .number(Double(Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1)))))
            case JSONCompact.double:
                var bits: UInt64 = 0
                if pos + 8 <= count {
                    bits = UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self).littleEndian
                }
                pos = Swift.min(count, pos + 8)
                return .number(Double(bitPattern: bits))
            case JSONCompact.string: return .string(string())
            case JSONCompact.array:
                let n = length()
                var elements: [JSONValue] = []
                elements.reserveCapacity(Swift.min(n, count - pos))
                for _ in 0..<n where pos < count { elements.append(value()) }
                return .array(elements)
            case JSONCompact.object:
                let n = length()
                var members: [JSONObject.Member] = []
                members.reserveCapacity(Swift.min(n, count - pos))
                for _ in 0..<n where pos < count {
                    let key = string()
                    members.append(JSONObject.Member(key: key, value: value()))
                }
                return .object(JSONObject(uniqueMembers: members))
            default: return .null
            }
        }

        /// Skips one value, checking bounds and tags.
        mutating func skipValue(depth: Int) -> Bool {
            guard pos < count else { return false }
            let tag = base[pos]
            pos += 1
            if tag >= JSONCompact.smallInt { return true }
            switch tag {
            case JSONCompact.null, JSONCompact.falseTag, JSONCompact.trueTag: return true
            case JSONCompact.int: return skipVarint()
            case JSONCompact.double:
                pos += 8
                return pos <= count
            case JSONCompact.string: return skipBytes()
            case JSONCompact.array, JSONCompact.object:
                guard depth < JSONValue.maxNestingDepth else { return false }
                guard let n = checkedVarint() else { return false }
                // Every element takes at least one byte.
                guard n <= UInt64(count - pos) else { return false }
                for _ in 0..<Int(n) {
                    if tag == JSONCompact.object && !skipBytes() { return false }
                    if !skipValue(depth: depth + 1) { return false }
                }
                return true
            default: return false
            }
        }

        mutating func checkedVarint() -> UInt64? {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while pos < count {
                let b = base[pos]
                pos += 1
                result |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return result }
                shift += 7
                if shift > 63 { return nil }
            }
            return nil
        }

        mutating func skipVarint() -> Bool { checkedVarint() != nil }

        mutating func skipBytes() -> Bool {
            guard let n = checkedVarint(), n <= UInt64(count - pos) else { return false }
            pos += Int(n)
            return true
        }
    }
}
