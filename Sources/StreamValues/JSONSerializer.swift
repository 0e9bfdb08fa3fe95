// Compact, deterministic JSON serialisation.

extension JSONValue {
    /// The compact JSON text of this value as UTF-8 bytes.
    ///
    /// Deterministic: no whitespace, object members in insertion order. Numbers that are
    /// integral and within ±2^53 print without a fraction (`3`, `-0`, `12345678901234`); other
    /// finite numbers print in their shortest round-trip form (`59.9`, `1e-7`,
    /// `1.2345678901234567e+19`). Non-finite numbers, which JSON cannot express, print as
    /// `null`. Strings escape `"`, `\` and control characters (`\n`, `\t`, ... or `\u00XX`);
    /// everything else, including non-ASCII, is written as raw UTF-8.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        serialize(into: &out)
        return out
    }

    /// The compact JSON text of this value. See ``serialized()``.
    public func serializedString() -> String {
        String(decoding: serialized(), as: UTF8.self)
    }

    /// Appends the compact JSON text of this value to `buffer` (lets callers reuse a buffer).
    /// See ``serialized()``.
    public func serialize(into buffer: inout [UInt8]) {
        JSONWriter.write(self, into: &buffer)
    }
}

private enum JSONWriter {
    static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null:
            appendLiteral("null", to: &out)
        case .bool(let b):
            appendLiteral(b ? "true" : "false", to: &out)
        case .number(let d):
            writeNumber(d, into: &out)
        case .string(let s):
            writeString(s, into: &out)
        case .array(let elements):
            out.append(0x5B)  // [
            var first = true
            for element in elements {
                if !first { out.append(0x2C) }
                first = false
                write(element, into: &out)
            }
            out.append(0x5D)  // ]
        case .object(let object):
            out.append(0x7B)  // {
            var first = true
            for member in object.members {
                if !first { out.append(0x2C) }
                first = false
                writeString(member.key, into: &out)
                out.append(0x3A)  // :
                write(member.value, into: &out)
            }
            out.append(0x7D)  // }
        }
    }

    @inline(__always)
    static func appendLiteral(_ literal: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    static func writeNumber(_ d: Double, into out: inout [UInt8]) {
        guard d.isFinite else {
            appendLiteral("null", to: &out)
            return
        }
        if d.rounded(.towardZero) == d && d.magnitude <= 9_007_199_254_740_992 {  // 2^53
            if d == 0 {
                if d.sign == .minus { out.append(0x2D) }
                out.append(0x30)
                return
            }
            writeInteger(Int64(d), into: &out)
            return
        }
        // Shortest round-trip digits from the standard library, with the exponent tidied
        // ("1e-07" → "1e-7") so output matches common JSON producers.
        var text = d.description
        text.withUTF8 { bytes in
            var i = 0
            while i < bytes.count {
                let b = bytes[i]
                out.append(b)
                i += 1
                if b == 0x65 {  // e
                    if i < bytes.count && (bytes[i] == 0x2D || bytes[i] == 0x2B) {
                        out.append(bytes[i])
                        i += 1
                    }
                    while i < bytes.count - 1 && bytes[i] == 0x30 { i += 1 }
                }
            }
        }
    }

    static func writeInteger(_ value: Int64, into out: inout [UInt8]) {
        var magnitude = value.magnitude
        if value < 0 { out.append(0x2D) }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var i = 20
            repeat {
                i -= 1
                digits[i] = 0x30 &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[i..<20]))
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(0x22)
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { bytes in
            writeEscaped(bytes, into: &out)
        }
        if done == nil {  // bridged or otherwise non-contiguous string
            let copy = Array(s.utf8)
            copy.withUnsafeBufferPointer { writeEscaped($0, into: &out) }
        }
        out.append(0x22)
    }

    static func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        var runStart = 0
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b >= 0x20 && b != 0x22 && b != 0x5C {
                i += 1
                continue
            }
            if runStart < i {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
            }
            out.append(0x5C)  // backslash
            switch b {
            case 0x22: out.append(0x22)
            case 0x5C: out.append(0x5C)
            case 0x08: out.append(0x62)  // b
            case 0x0C: out.append(0x66)  // f
            case 0x0A: out.append(0x6E)  // n
            case 0x0D: out.append(0x72)  // r
            case 0x09: out.append(0x74)  // t
            default:
                out.append(0x75)  // u
                out.append(0x30)
                out.append(0x30)
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0x0F)])
            }
            i += 1
            runStart = i
        }
        if runStart < n {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<n]))
        }
    }
}
