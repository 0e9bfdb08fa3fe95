import ByteArrays
import Foundation

// A hand-written RFC 8259 parser producing JSONValue trees.

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

    /// ``parse(_:)-(UnsafeRawBufferPointer)`` that takes object keys it met before from
    /// `keys` instead of making a new `String` for each (and leaves the new ones there):
    /// a reader of one topic's records meets the same few keys again and again.
    public static func parse(_ bytes: UnsafeRawBufferPointer, keys: inout JSONKeyCache) throws(JSONParseError) -> JSONValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONParseError(.unexpectedEndOfInput, at: 0)
        }
        var parser = JSONParser(base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        swap(&parser.keys, &keys)  // moved, not copied: the slots stay uniquely referenced
        let stacks = parser.keys.stacks  // the caller's cache, swapped in above
        if let stacks {  // the buffers move in and back out: no allocation per parse
            swap(&parser.valueStack, &stacks.values)
            swap(&parser.memberStack, &stacks.members)
            swap(&parser.fingerprintStack, &stacks.fingerprints)
        }
        defer {
            swap(&parser.keys, &keys)
            if let stacks {
                parser.valueStack.removeAll()  // empty unless the parse failed half-way
                parser.memberStack.removeAll()
                parser.fingerprintStack.removeAll()
                swap(&parser.valueStack, &stacks.values)
                swap(&parser.memberStack, &stacks.members)
                swap(&parser.fingerprintStack, &stacks.fingerprints)
            }
            parser.release()
        }
        return try parser.parseDocument()
    }

    /// ``parse(_:keys:)-(UnsafeRawBufferPointer,_)`` from an array of UTF-8 bytes.
    public static func parse(_ bytes: [UInt8], keys: inout JSONKeyCache) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) in try parse(raw, keys: &keys) }
        }
        return try result.get()
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

enum ASCII {
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


/// Recursive-descent parser over a byte buffer that outlives it.
///
/// Container elements are collected on shared stacks and moved out once per container, so
/// every array/object is allocated exactly once, at its final size. Call ``release()`` when done.
struct JSONParser {
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
    /// Keys met before (empty unless the caller passed a cache).
    var keys = JSONKeyCache.unused
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
        // A top-level object with a key cache: its keys are compared with the last one's, in
        // order, while they are the same (`onShape`: every key so far was the shape's at its
        // position, so none repeats another and the duplicate check is skipped).
        let usesShape = depth == 1 && !keys.slots.isEmpty
        var onShape = usesShape && !keys.shapeKeys.isEmpty
        var index: [String: Int]? = nil  // key → position, built only for large objects
        // One bit per hashed key met so far (chosen by its fingerprint), while every key was
        // hashed: a key whose bit is clear is new without comparing it to the others.
        var seen: UInt64 = 0
        var allHashed = true
        while true {
            skipWhitespace()
            guard pos < count, base[pos] == ASCII.quote else { throw unexpected() }
            let key: String
            let fingerprint: UInt64
            let position = memberStack.count - start
            if onShape && position < keys.shapeKeys.count && keys.shapeMatches(position, base + pos, base + count) {
                key = keys.shapeKeys[position].key
                fingerprint = keys.shapeKeys[position].fingerprint
                pos += keys.shapeKeys[position].count + 2
            } else {
                onShape = false
                if let escaped = try scanString() {
                    key = escaped
                    fingerprint = 1
                } else if lastStringPlainASCII {
                    fingerprint = Self.fingerprint(base + lastStringStart, lastStringEnd - lastStringStart)
                    key = keys.key(fingerprint, base + lastStringStart, lastStringEnd - lastStringStart)
                } else {
                    key = String(decoding: UnsafeBufferPointer(start: base + lastStringStart, count: lastStringEnd - lastStringStart), as: UTF8.self)
                    fingerprint = 1
                }
            }
            skipWhitespace()
            guard pos < count, base[pos] == ASCII.colon else { throw unexpected() }
            pos += 1
            let value = try parseValue()
            // Duplicate keys: the first position wins, the last value wins.
            let n = memberStack.count - start
            if n < 24 {
                var duplicate = false
                let bit: UInt64 = fingerprint & 1 == 0 ? 1 << (fingerprint >> 58) : 0
                if !onShape && !(allHashed && bit != 0 && seen & bit == 0) {
                    for i in start..<memberStack.count {
                        let other = fingerprintStack.elements[i]
                        if other != fingerprint && (other | fingerprint) & 1 == 0 { continue }
                        if memberStack.elements[i].key == key {
                            memberStack.elements[i].value = value
                            duplicate = true
                            break
                        }
                    }
                }
                seen |= bit
                allHashed = allHashed && bit != 0
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
        if usesShape && !(onShape && memberStack.count - start == keys.shapeKeys.count) {
            keys.recordShape(memberStack.elements + start, fingerprintStack.elements + start, memberStack.count - start)
        }
        let object = JSONObject(uniqueMembers: memberStack.popArray(from: start))
        fingerprintStack.count = start  // trivial type: no deinitialisation needed
        depth -= 1
        return object
    }

    /// A 64-bit hash of `n` bytes with the low bit cleared.
    @inline(__always)
    static func fingerprint(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        ByteHash.hash(UnsafeBufferPointer(start: p, count: n), seed: 0).hash & ~1
    }
}
