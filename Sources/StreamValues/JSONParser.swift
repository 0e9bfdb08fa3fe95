import Foundation
import Synchronization

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

/// The parser's stacks kept between parses by a ``JSONKeyCache`` (their buffers, empty).
final class ParserStacks {
    var values = MoveStack<JSONValue>()
    var members = MoveStack<JSONObject.Member>()
    var fingerprints = MoveStack<UInt64>()
    /// The member index of a `FlatJSONObject` being read.
    var flatEntries = MoveStack<FlatJSONObject.Entry>()

    deinit {
        values.release()
        members.release()
        fingerprints.release()
        flatEntries.release()
    }
}

/// A manually managed stack whose top segment can be moved (not copied) into an `Array`.
struct MoveStack<T> {
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

    /// Empties the stack and keeps its buffer.
    mutating func removeAll() {
        if let base { base.deinitialize(count: count) }
        count = 0
    }
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
}
