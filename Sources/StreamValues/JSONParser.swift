// A hand-written RFC 8259 parser producing JSONValue trees.

/// Why a JSON text was rejected: what went wrong and at which byte offset (0-based) of the
/// input. Its ``description`` is short and meant for dead-letter records, e.g.
/// `unexpected character 'x' at byte 17`.
public struct JSONParseError: Error, CustomStringConvertible, Hashable {
    /// The kinds of malformed input the parser reports.
    public enum Reason: Sendable, Hashable {
        /// A byte that cannot start or continue the construct being parsed.
        case unexpectedCharacter(UInt8)
        /// The input ended in the middle of a value (or was empty / only whitespace).
        case unexpectedEndOfInput
        /// A string with no closing quote; the offset is that of the opening quote.
        case unterminatedString
        /// A backslash followed by a character that is not a JSON escape.
        case invalidEscape
        /// `\u` not followed by four hexadecimal digits.
        case invalidUnicodeEscape
        /// A raw control character (U+0000–U+001F) inside a string; the payload is the byte.
        case controlCharacterInString(UInt8)
        /// A malformed number such as `-`, `01`, `1.` or `1e`.
        case invalidNumber
        /// A number whose magnitude does not fit in a `Double` (e.g. `1e400`).
        case numberOutOfRange
        /// A byte sequence that is not valid UTF-8.
        case invalidUTF8
        /// More than ``JSONValue/maxNestingDepth`` nested arrays/objects.
        case nestingTooDeep
        /// Non-whitespace after the top-level value; the payload is the first such byte.
        case trailingCharacters(UInt8)
    }

    /// What went wrong.
    public let reason: Reason
    /// The 0-based byte offset in the input where the problem was detected.
    public let offset: Int

    /// Creates an error.
    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    /// A short, human-readable explanation, e.g. `unexpected character '}' at byte 5`.
    public var description: String {
        switch reason {
        case .unexpectedCharacter(let b):
            return "unexpected character \(Self.show(b)) at byte \(offset)"
        case .unexpectedEndOfInput:
            return "unexpected end of input at byte \(offset)"
        case .unterminatedString:
            return "unterminated string starting at byte \(offset)"
        case .invalidEscape:
            return "invalid escape sequence at byte \(offset)"
        case .invalidUnicodeEscape:
            return "invalid \\u escape at byte \(offset)"
        case .controlCharacterInString(let b):
            return "unescaped control character \(Self.show(b)) in string at byte \(offset)"
        case .invalidNumber:
            return "invalid number at byte \(offset)"
        case .numberOutOfRange:
            return "number out of range at byte \(offset)"
        case .invalidUTF8:
            return "invalid UTF-8 at byte \(offset)"
        case .nestingTooDeep:
            return "nesting deeper than \(JSONValue.maxNestingDepth) at byte \(offset)"
        case .trailingCharacters(let b):
            return "unexpected trailing character \(Self.show(b)) at byte \(offset)"
        }
    }

    private static func show(_ b: UInt8) -> String {
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        let hex = String(b, radix: 16, uppercase: true)
        return b < 0x10 ? "0x0\(hex)" : "0x\(hex)"
    }
}

extension JSONValue {
    /// The deepest nesting of arrays and objects the parser accepts (128 containers).
    public static let maxNestingDepth = 128

    /// Parses one JSON text (RFC 8259) from UTF-8 bytes.
    ///
    /// - Any value may be at top level; surrounding whitespace is allowed, anything else after
    ///   the value is rejected.
    /// - Strings must be valid UTF-8 without raw control characters. All escapes are decoded,
    ///   including `\uXXXX` and surrogate pairs. A lone (unpaired) surrogate escape such as
    ///   `"\uD800"` is accepted and replaced by U+FFFD, because Swift strings cannot hold it.
    /// - Numbers follow the JSON grammar and are converted to the nearest `Double`; a number
    ///   too large for a `Double` (e.g. `1e400`) is rejected, tiny ones underflow to zero.
    /// - A key repeated in one object keeps its first position and its last value.
    /// - At most ``maxNestingDepth`` nested arrays/objects.
    ///
    /// - Throws: ``JSONParseError`` with the byte offset and reason.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONParseError(.unexpectedEndOfInput, at: 0)
        }
        var parser = JSONParser(base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        defer { parser.release() }
        return try parser.parseDocument()
    }

    /// Parses one JSON text from UTF-8 bytes. See ``parse(_:)-(UnsafeRawBufferPointer)``.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) in try parse(raw) }
        }
        return try result.get()
    }

    /// Parses one JSON text from a string. See ``parse(_:)-(UnsafeRawBufferPointer)``.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        let result: Result<JSONValue, JSONParseError> = text.withUTF8 { buffer in
            Result { () throws(JSONParseError) in try parse(UnsafeRawBufferPointer(buffer)) }
        }
        return try result.get()
    }
}

// MARK: - Parser

private enum ASCII {
    static let quote: UInt8 = 0x22  // "
    static let backslash: UInt8 = 0x5C
    static let slash: UInt8 = 0x2F
    static let comma: UInt8 = 0x2C
    static let colon: UInt8 = 0x3A
    static let openBracket: UInt8 = 0x5B
    static let closeBracket: UInt8 = 0x5D
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D
    static let minus: UInt8 = 0x2D
    static let plus: UInt8 = 0x2B
    static let dot: UInt8 = 0x2E
    static let zero: UInt8 = 0x30
    static let nine: UInt8 = 0x39
    static let lowerE: UInt8 = 0x65
    static let upperE: UInt8 = 0x45
    static let lowerT: UInt8 = 0x74
    static let lowerF: UInt8 = 0x66
    static let lowerN: UInt8 = 0x6E
    static let lowerU: UInt8 = 0x75
    static let lowerB: UInt8 = 0x62
    static let lowerR: UInt8 = 0x72
}

/// Exact powers of ten representable as `Double` (10^0 ... 10^22).
private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

/// A manually managed stack whose top segment can be moved (not copied) into an `Array`.
private struct MoveStack<T> {
    var base: UnsafeMutablePointer<T>? = nil
    var count = 0
    var capacity = 0

    @inline(__always)
    mutating func push(_ value: consuming T) {
        if count == capacity { grow() }
        (base.unsafelyUnwrapped + count).initialize(to: value)
        count += 1
    }

    /// The elements; valid for indices below `count` until the next `push`.
    @inline(__always)
    var elements: UnsafeMutablePointer<T> { base.unsafelyUnwrapped }

    mutating func grow() {
        let newCapacity = max(16, capacity * 2)
        let newBase = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
        if let base {
            newBase.moveInitialize(from: base, count: count)
            base.deallocate()
        }
        base = newBase
        capacity = newCapacity
    }

    /// Moves the elements from `start` to the top into a new array and pops them.
    mutating func popArray(from start: Int) -> [T] {
        let n = count - start
        guard n > 0 else { return [] }
        let source = base.unsafelyUnwrapped + start
        let result = [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            buffer.baseAddress.unsafelyUnwrapped.moveInitialize(from: source, count: n)
            initialized = n
        }
        count = start
        return result
    }

    mutating func release() {
        if let base {
            base.deinitialize(count: count)
            base.deallocate()
        }
        base = nil
        count = 0
        capacity = 0
    }
}

/// Recursive-descent parser over a byte buffer that outlives it.
///
/// Container elements are collected on shared stacks and moved out once per container, so
/// every array/object is allocated exactly once, at its final size. Call ``release()`` when done.
private struct JSONParser {
    let base: UnsafePointer<UInt8>
    let count: Int
    var pos = 0
    var depth = 0
    var valueStack = MoveStack<JSONValue>()
    var memberStack = MoveStack<JSONObject.Member>()
    /// Per member of `memberStack`: a hash of the key's bytes with the low bit clear when the
    /// key is plain ASCII (so byte inequality implies `String` inequality), or 1 otherwise.
    var fingerprintStack = MoveStack<UInt64>()
    var scratch: [UInt8] = []
    /// Set by `parseString`: whether the last string was plain ASCII without escapes, i.e.
    /// exactly the input bytes `lastStringStart..<lastStringEnd`.
    var lastStringPlainASCII = false
    var lastStringStart = 0
    var lastStringEnd = 0

    init(base: UnsafePointer<UInt8>, count: Int) {
        self.base = base
        self.count = count
    }

    mutating func release() {
        valueStack.release()
        memberStack.release()
        fingerprintStack.release()
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        let value = try parseValue()
        skipWhitespace()
        if pos < count { throw JSONParseError(.trailingCharacters(base[pos]), at: pos) }
        return value
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < count {
            let b = base[pos]
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
            pos += 1
        }
    }

    /// The error for the byte at `pos` not being what was expected (or for the end of input).
    @inline(__always)
    func unexpected() -> JSONParseError {
        pos < count
            ? JSONParseError(.unexpectedCharacter(base[pos]), at: pos)
            : JSONParseError(.unexpectedEndOfInput, at: pos)
    }

    mutating func parseValue() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard pos < count else { throw JSONParseError(.unexpectedEndOfInput, at: pos) }
        switch base[pos] {
        case ASCII.quote:
            return .string(try parseString())
        case ASCII.openBrace:
            return .object(try parseObject())
        case ASCII.openBracket:
            return .array(try parseArray())
        case ASCII.minus, ASCII.zero...ASCII.nine:
            return .number(try parseNumber())
        case ASCII.lowerT:
            try expectLiteral("true")
            return .bool(true)
        case ASCII.lowerF:
            try expectLiteral("false")
            return .bool(false)
        case ASCII.lowerN:
            try expectLiteral("null")
            return .null
        default:
            throw unexpected()
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let chars = literal.utf8Start
        for i in 0..<literal.utf8CodeUnitCount {
            guard pos < count, base[pos] == chars[i] else { throw unexpected() }
            pos += 1
        }
    }

    mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > JSONValue.maxNestingDepth { throw JSONParseError(.nestingTooDeep, at: pos) }
        pos += 1
    }

    mutating func parseArray() throws(JSONParseError) -> [JSONValue] {
        try enter()
        skipWhitespace()
        if pos < count && base[pos] == ASCII.closeBracket {
            pos += 1
            depth -= 1
            return []
        }
        let start = valueStack.count
        while true {
            let element = try parseValue()
            valueStack.push(element)
            skipWhitespace()
            guard pos < count else { throw JSONParseError(.unexpectedEndOfInput, at: pos) }
            let b = base[pos]
            pos += 1
            if b == ASCII.comma { continue }
            if b == ASCII.closeBracket { break }
            pos -= 1
            throw unexpected()
        }
        let array = valueStack.popArray(from: start)
        depth -= 1
        return array
    }

    mutating func parseObject() throws(JSONParseError) -> JSONObject {
        try enter()
        skipWhitespace()
        if pos < count && base[pos] == ASCII.closeBrace {
            pos += 1
            depth -= 1
            return JSONObject()
        }
        let start = memberStack.count
        var index: [String: Int]? = nil  // key → position, built only for large objects
        while true {
            skipWhitespace()
            guard pos < count, base[pos] == ASCII.quote else { throw unexpected() }
            let key = try parseString()
            let fingerprint =
                lastStringPlainASCII
                ? Self.fingerprint(base + lastStringStart, lastStringEnd - lastStringStart) : 1
            skipWhitespace()
            guard pos < count, base[pos] == ASCII.colon else { throw unexpected() }
            pos += 1
            let value = try parseValue()
            // Duplicate keys: the first position wins, the last value wins.
            let n = memberStack.count - start
            if n < 24 {
                var duplicate = false
                for i in start..<memberStack.count {
                    let other = fingerprintStack.elements[i]
                    if other != fingerprint && (other | fingerprint) & 1 == 0 { continue }
                    if memberStack.elements[i].key == key {
                        memberStack.elements[i].value = value
                        duplicate = true
                        break
                    }
                }
                if !duplicate {
                    memberStack.push(JSONObject.Member(key: key, value: value))
                    fingerprintStack.push(fingerprint)
                }
            } else {
                if index == nil {
                    var built = [String: Int](minimumCapacity: n * 2)
                    for i in start..<memberStack.count { built[memberStack.elements[i].key] = i }
                    index = built
                }
                if let i = index![key] {
                    memberStack.elements[i].value = value
                } else {
                    index![key] = memberStack.count
                    memberStack.push(JSONObject.Member(key: key, value: value))
                    fingerprintStack.push(fingerprint)
                }
            }
            skipWhitespace()
            guard pos < count else { throw JSONParseError(.unexpectedEndOfInput, at: pos) }
            let b = base[pos]
            pos += 1
            if b == ASCII.comma { continue }
            if b == ASCII.closeBrace { break }
            pos -= 1
            throw unexpected()
        }
        let object = JSONObject(uniqueMembers: memberStack.popArray(from: start))
        fingerprintStack.count = start  // trivial type: no deinitialisation needed
        depth -= 1
        return object
    }

    /// A 64-bit hash of `n` bytes with the low bit cleared.
    @inline(__always)
    static func fingerprint(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var h = UInt64(truncatingIfNeeded: n) &* 0x9E37_79B9_7F4A_7C15
        let raw = UnsafeRawPointer(p)
        var i = 0
        while i + 8 <= n {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
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
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        return (h ^ (h >> 31)) & ~1
    }

    // MARK: Strings

    /// Parses a string starting at the opening quote at `pos`.
    mutating func parseString() throws(JSONParseError) -> String {
        let quoteAt = pos
        pos += 1
        let start = pos
        var ascii = true
        while pos < count {
            let b = base[pos]
            if b == ASCII.quote {
                let s = String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
                lastStringPlainASCII = ascii
                lastStringStart = start
                lastStringEnd = pos
                pos += 1
                return s
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

    // MARK: Numbers

    @inline(__always)
    func isDigit(at i: Int) -> Bool {
        i < count && base[i] &- ASCII.zero < 10
    }

    /// Parses a number at `pos` (which holds `-` or a digit).
    mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = pos
        let negative = base[pos] == ASCII.minus
        if negative { pos += 1 }

        var mantissa: UInt64 = 0
        var significantDigits = 0
        var exponent = 0  // decimal exponent applied to `mantissa`

        guard pos < count else { throw JSONParseError(.invalidNumber, at: pos) }
        if base[pos] == ASCII.zero {
            pos += 1
            if isDigit(at: pos) { throw JSONParseError(.invalidNumber, at: start) }  // leading zero
        } else if isDigit(at: pos) {
            repeat {
                let d = UInt64(base[pos] &- ASCII.zero)
                if significantDigits < 19 {
                    mantissa = mantissa &* 10 &+ d
                } else {
                    exponent += 1  // digit dropped; precise value comes from the slow path
                }
                significantDigits += 1
                pos += 1
            } while isDigit(at: pos)
        } else {
            throw JSONParseError(.invalidNumber, at: pos)
        }

        if pos < count && base[pos] == ASCII.dot {
            pos += 1
            guard isDigit(at: pos) else { throw JSONParseError(.invalidNumber, at: pos) }
            repeat {
                let d = UInt64(base[pos] &- ASCII.zero)
                if mantissa == 0 && d == 0 {
                    exponent -= 1  // leading zeros of the fraction are not significant
                } else {
                    if significantDigits < 19 {
                        mantissa = mantissa &* 10 &+ d
                        exponent -= 1
                    }
                    significantDigits += 1
                }
                pos += 1
            } while isDigit(at: pos)
        }

        if pos < count && (base[pos] == ASCII.lowerE || base[pos] == ASCII.upperE) {
            pos += 1
            var expNegative = false
            if pos < count && (base[pos] == ASCII.minus || base[pos] == ASCII.plus) {
                expNegative = base[pos] == ASCII.minus
                pos += 1
            }
            guard isDigit(at: pos) else { throw JSONParseError(.invalidNumber, at: pos) }
            var e = 0
            repeat {
                if e < 100_000 { e = e * 10 + Int(base[pos] &- ASCII.zero) }
                pos += 1
            } while isDigit(at: pos)
            exponent += expNegative ? -e : e
        }

        // Clinger's fast path: mantissa and 10^|exponent| are exact doubles, so one correctly
        // rounded multiplication or division gives the correctly rounded result.
        if significantDigits <= 19 && mantissa <= (1 << 53) && exponent >= -22 && exponent <= 22 {
            var value = Double(mantissa)
            if exponent < 0 {
                value /= exactPowersOfTen[-exponent]
            } else {
                value *= exactPowersOfTen[exponent]
            }
            return negative ? -value : value
        }
        if mantissa == 0 && significantDigits == 0 { return negative ? -0.0 : 0.0 }

        // Slow path: the standard library's correctly rounded conversion.
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw JSONParseError(.numberOutOfRange, at: start)
        }
        return value
    }
}
