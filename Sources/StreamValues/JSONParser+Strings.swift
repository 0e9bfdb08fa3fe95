// The JSON parser's strings: escapes, \u sequences and UTF-8 validation.

extension JSONParser {
    // MARK: Strings

    /// Parses a string starting at the opening quote at `pos`.
    @inline(__always)
    mutating func parseString() throws(JSONParseError) -> String {
        if let escaped = try scanString() { return escaped }
        let n = lastStringEnd - lastStringStart
        if n <= 15 {
            // Fits a small string: written in place (`String(decoding:)` would take a slower,
            // repairing path to the same value).
            let p = base + lastStringStart
            return String(unsafeUninitializedCapacity: n) { buffer in
                buffer.baseAddress.unsafelyUnwrapped.initialize(from: p, count: n)
                return n
            }
        }
        return String(decoding: UnsafeBufferPointer(start: base + lastStringStart, count: n), as: UTF8.self)
    }

    /// Scans a string starting at the opening quote at `pos`. A string without escapes is
    /// left in place: `nil`, and its content (valid UTF-8) is `lastStringStart..<lastStringEnd`;
    /// a string with escapes is returned decoded.
    mutating func scanString() throws(JSONParseError) -> String? {
        let quoteAt = pos
        pos += 1
        let start = pos
        var ascii = true
        // Eight bytes at a time while none is a quote, a backslash, a control character or
        // non-ASCII (the byte loop below then handles the chunk that holds one).
        let raw = UnsafeRawPointer(base)
        while pos + 8 <= count {
            let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: pos, as: UInt64.self))
            let special = Self.specialBytes(w)
            if special == 0 {
                pos += 8
                continue
            }
            // The lowest flagged byte is exactly the first special one (a false flag can only
            // sit above a true one); when it is the closing quote, every byte before it is plain
            // ASCII and the string ends there: a short string takes one word, no byte loop.
            pos += special.trailingZeroBitCount >> 3
            if base[pos] == ASCII.quote {
                lastStringPlainASCII = ascii
                lastStringStart = start
                lastStringEnd = pos
                pos += 1
                return nil
            }
            break
        }
        while pos < count {
            let b = base[pos]
            if b == ASCII.quote {
                lastStringPlainASCII = ascii
                lastStringStart = start
                lastStringEnd = pos
                pos += 1
                return nil
            }
            if b == ASCII.backslash {
                lastStringPlainASCII = false
                return try parseEscapedString(contentStart: start, quoteAt: quoteAt)
            }
            if b < 0x20 { throw JSONParseError(.controlCharacterInString(b), at: pos) }
            if b >= 0x80 {
                ascii = false
                pos += try validateUTF8Sequence(lead: b)
            } else {
                pos += 1
            }
        }
        throw JSONParseError(.unterminatedString, at: quoteAt)
    }

    /// The high bit of every byte of `w` (little-endian: byte 0 is the lowest) that is `"`,
    /// `\\`, below 0x20 or above 0x7F, and possibly of bytes above such a byte (a borrow);
    /// the lowest set bit always marks the first special byte.
    @inline(__always)
    static func specialBytes(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func zeroByte(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
        let quote = zeroByte(w ^ (ones &* UInt64(ASCII.quote)))
        let backslash = zeroByte(w ^ (ones &* UInt64(ASCII.backslash)))
        let control = (w &- ones &* 0x20) & ~w & highs  // bytes below 0x20 (high-bit bytes caught below)
        return quote | backslash | control | (w & highs)
    }

    /// Continues a string at the first backslash, decoding into `scratch`.
    mutating func parseEscapedString(contentStart: Int, quoteAt: Int) throws(JSONParseError) -> String {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(start: base + contentStart, count: pos - contentStart))
        while pos < count {
            let b = base[pos]
            if b == ASCII.quote {
                pos += 1
                return String(decoding: scratch, as: UTF8.self)
            }
            if b == ASCII.backslash {
                guard pos + 1 < count else { throw JSONParseError(.unterminatedString, at: quoteAt) }
                let e = base[pos + 1]
                switch e {
                case ASCII.quote, ASCII.backslash, ASCII.slash: scratch.append(e)
                case ASCII.lowerB: scratch.append(0x08)
                case ASCII.lowerF: scratch.append(0x0C)
                case ASCII.lowerN: scratch.append(0x0A)
                case ASCII.lowerR: scratch.append(0x0D)
                case ASCII.lowerT: scratch.append(0x09)
                case ASCII.lowerU:
                    try decodeUnicodeEscape(quoteAt: quoteAt)
                    continue
                default:
                    throw JSONParseError(.invalidEscape, at: pos)
                }
                pos += 2
                continue
            }
            if b < 0x20 { throw JSONParseError(.controlCharacterInString(b), at: pos) }
            if b >= 0x80 {
                let n = try validateUTF8Sequence(lead: b)
                scratch.append(contentsOf: UnsafeBufferPointer(start: base + pos, count: n))
                pos += n
            } else {
                // Copy the run of plain ASCII in one go.
                let runStart = pos
                pos += 1
                while pos < count {
                    let c = base[pos]
                    if c == ASCII.quote || c == ASCII.backslash || c < 0x20 || c >= 0x80 { break }
                    pos += 1
                }
                scratch.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: pos - runStart))
            }
        }
        throw JSONParseError(.unterminatedString, at: quoteAt)
    }

    /// Reads four hex digits at `at`, or returns nil.
    @inline(__always)
    func hex4(at: Int) -> UInt32? {
        guard at + 4 <= count else { return nil }
        var v: UInt32 = 0
        for i in 0..<4 {
            let c = base[at + i]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c &- 0x30
            case 0x41...0x46: d = c &- 0x41 &+ 10
            case 0x61...0x66: d = c &- 0x61 &+ 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    /// Decodes `\uXXXX` (and a following low surrogate escape) at `pos`, appending UTF-8.
    mutating func decodeUnicodeEscape(quoteAt: Int) throws(JSONParseError) {
        guard let unit = hex4(at: pos + 2) else {
            if pos + 6 > count { throw JSONParseError(.unterminatedString, at: quoteAt) }
            throw JSONParseError(.invalidUnicodeEscape, at: pos)
        }
        pos += 6
        var scalar = unit
        if unit >= 0xD800 && unit <= 0xDBFF {
            if pos + 1 < count, base[pos] == ASCII.backslash, base[pos + 1] == ASCII.lowerU,
                let low = hex4(at: pos + 2), low >= 0xDC00 && low <= 0xDFFF
            {
                scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                pos += 6
            } else {
                scalar = 0xFFFD  // lone high surrogate
            }
        } else if unit >= 0xDC00 && unit <= 0xDFFF {
            scalar = 0xFFFD  // lone low surrogate
        }
        appendUTF8(scalar)
    }

    @inline(__always)
    mutating func appendUTF8(_ v: UInt32) {
        if v < 0x80 {
            scratch.append(UInt8(v))
        } else if v < 0x800 {
            scratch.append(UInt8(0xC0 | (v >> 6)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x10000 {
            scratch.append(UInt8(0xE0 | (v >> 12)))
            scratch.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            scratch.append(UInt8(0xF0 | (v >> 18)))
            scratch.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            scratch.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    /// Validates the multi-byte UTF-8 sequence starting with `lead` at `pos`; returns its length.
    @inline(__always)
    func validateUTF8Sequence(lead: UInt8) throws(JSONParseError) -> Int {
        @inline(__always) func byte(_ i: Int) -> UInt8 { pos + i < count ? base[pos + i] : 0 }
        @inline(__always) func isCont(_ b: UInt8) -> Bool { b & 0xC0 == 0x80 }
        let b1 = byte(1)
        switch lead {
        case 0xC2...0xDF:
            if isCont(b1) { return 2 }
        case 0xE0:
            if b1 >= 0xA0 && b1 <= 0xBF && isCont(byte(2)) { return 3 }
        case 0xE1...0xEC, 0xEE...0xEF:
            if isCont(b1) && isCont(byte(2)) { return 3 }
        case 0xED:
            if b1 >= 0x80 && b1 <= 0x9F && isCont(byte(2)) { return 3 }
        case 0xF0:
            if b1 >= 0x90 && b1 <= 0xBF && isCont(byte(2)) && isCont(byte(3)) { return 4 }
        case 0xF1...0xF3:
            if isCont(b1) && isCont(byte(2)) && isCont(byte(3)) { return 4 }
        case 0xF4:
            if b1 >= 0x80 && b1 <= 0x8F && isCont(byte(2)) && isCont(byte(3)) { return 4 }
        default:
            break
        }
        throw JSONParseError(.invalidUTF8, at: pos)
    }
}
