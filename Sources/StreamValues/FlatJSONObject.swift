// A top-level JSON object of scalar members, kept as its text with an index of the members.

import ByteArrays
import Foundation

/// A JSON object whose members are all scalars (strings, numbers, `true`, `false`, `null`)
/// with distinct plain-ASCII keys, kept as its UTF-8 text and an index of where each member's
/// key and value are (and each number already converted): a record is checked and read field
/// by field without making a ``JSONObject`` tree of `String`s, and the tree is made only when
/// something asks for the whole object (``object``).
///
/// Made by ``JSONValue/parseFlatObject(_:keys:)``, which accepts exactly the texts that
/// ``JSONValue/parse(_:keys:)-(UnsafeRawBufferPointer,_)`` parses into such an object, and
/// gives the same values: ``object`` equals that parse's result, member order included.
/// Text and index are one immutable buffer (one allocation per record).
public struct FlatJSONObject: Sendable {
    /// What a member's value is.
    @usableFromInline
    enum Kind: UInt32 {
        /// A string without escapes of plain ASCII: its text is the value.
        case asciiString
        /// A string without escapes, not all ASCII (valid UTF-8): its text is the value.
        case utf8String
        case number
        case trueLiteral
        case falseLiteral
        case null
    }

    /// One member in the index: where its key's and value's bytes are in the text (a
    /// string's without the quotes), what the value is, and a number's value.
    @usableFromInline
    struct Entry {
        @usableFromInline var keyStart: UInt32
        @usableFromInline var keyCount: UInt32
        @usableFromInline var valueStart: UInt32
        @usableFromInline var valueCount: UInt32
        @usableFromInline var kind: UInt32
        @usableFromInline var number: Double

        init(keyStart: Int, keyCount: Int, valueStart: Int, valueCount: Int, kind: Kind, number: Double) {
            self.keyStart = UInt32(truncatingIfNeeded: keyStart)
            self.keyCount = UInt32(truncatingIfNeeded: keyCount)
            self.valueStart = UInt32(truncatingIfNeeded: valueStart)
            self.valueCount = UInt32(truncatingIfNeeded: valueCount)
            self.kind = kind.rawValue
            self.number = number
        }
    }

    /// The object's text, then `count` entries of the index (each `MemoryLayout<Entry>.stride` bytes).
    @usableFromInline let storage: [UInt8]
    /// Where the index starts in `storage` (the text's length).
    @usableFromInline let indexStart: Int
    /// The number of members.
    public let count: Int
    /// Objects read by one reader with the same shape (not `nil`) have the same keys at the
    /// same positions: a position found for a key in one holds in the others.
    public let shape: Shape?

    /// Which keys, in which order (see ``shape``): a reader's key cache and the generation of
    /// its key sequence, which changes whenever a record's keys differ from the one before.
    public struct Shape: Sendable, Hashable {
        let cache: UInt64
        let generation: UInt64
    }

    init(storage: [UInt8], indexStart: Int, count: Int, shape: Shape?) {
        self.storage = storage
        self.indexStart = indexStart
        self.count = count
        self.shape = shape
    }

    @inlinable @inline(__always)
    func entry(_ i: Int, _ raw: UnsafeRawBufferPointer) -> Entry {
        raw.loadUnaligned(fromByteOffset: indexStart + i * MemoryLayout<Entry>.stride, as: Entry.self)
    }

    /// The position of the member whose key is `key`, trying `hint` first (where the key was
    /// in an earlier object of the same shape); `hint` becomes the position found.
    @inlinable
    public func index(ofKey key: String, hint: inout Int) -> Int? {
        var key = key  // `withUTF8` on a copy: no generic `withContiguousStorageIfAvailable`
        return key.withUTF8 { index(ofKeyBytes: $0, hint: &hint) }
    }

    /// ``index(ofKey:hint:)`` of a key given as its UTF-8 bytes (a caller that keeps them
    /// makes no copy of a `String` per lookup).
    @inlinable
    public func index(ofKeyBytes key: UnsafeBufferPointer<UInt8>, hint: inout Int) -> Int? {
        let found = storage.withUnsafeBytes { raw in Self.index(of: key, in: self, raw, hint: hint) }
        if let found { hint = found }
        return found
    }

    /// Compares bytes: the keys are plain ASCII, and a `String` that is not cannot equal one of
    /// the same UTF-8 length (a non-ASCII canonical equivalent of an ASCII string is
    /// longer: U+212A KELVIN SIGN is "K" in three bytes), which is what `JSONObject`'s lookup
    /// compares first, so both find the same member.
    @inlinable
    static func index(of k: UnsafeBufferPointer<UInt8>, in object: FlatJSONObject, _ raw: UnsafeRawBufferPointer, hint: Int) -> Int? {
        let n = k.count
        @inline(__always) func matches(_ i: Int) -> Bool {
            let e = object.entry(i, raw)
            return Int(e.keyCount) == n && (n == 0 || memcmp(raw.baseAddress! + Int(e.keyStart), k.baseAddress!, n) == 0)
        }
        if hint >= 0 && hint < object.count && matches(hint) { return hint }
        for i in 0..<object.count where matches(i) { return i }
        return nil
    }

    /// The key of the member at `index`.
    public func key(at index: Int) -> String {
        storage.withUnsafeBytes { raw in
            let e = entry(index, raw)
            return Self.string(raw.baseAddress! + Int(e.keyStart), Int(e.keyCount))
        }
    }

    /// The value of the member at `index`.
    @inlinable
    public func value(at index: Int) -> JSONValue {
        storage.withUnsafeBytes { raw in value(entry(index, raw), raw) }
    }

    @inlinable @inline(__always)
    func value(_ e: Entry, _ raw: UnsafeRawBufferPointer) -> JSONValue {
        switch Kind(rawValue: e.kind).unsafelyUnwrapped {
        case .asciiString, .utf8String: return .string(Self.string(raw.baseAddress! + Int(e.valueStart), Int(e.valueCount)))
        case .number: return .number(e.number)
        case .trueLiteral: return .bool(true)
        case .falseLiteral: return .bool(false)
        case .null: return .null
        }
    }

    /// The value for `key`, or `nil` when absent (see ``index(ofKey:hint:)``).
    @inlinable
    public func value(forKey key: String, hint: inout Int) -> JSONValue? {
        guard let i = index(ofKey: key, hint: &hint) else { return nil }
        return value(at: i)
    }

    /// Calls `body` with the text of the string member at `index` (without quotes), or
    /// returns `nil` when that member is not a string.
    @inlinable
    public func withStringBytes<R>(at index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
        try storage.withUnsafeBytes { raw in
            let e = entry(index, raw)
            guard e.kind == Kind.asciiString.rawValue || e.kind == Kind.utf8String.rawValue else { return nil }
            return try body(UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + Int(e.valueStart), count: Int(e.valueCount)))
        }
    }

    /// What a member's value is, as far as a type check needs.
    public enum MemberType: Sendable {
        case string, number, boolean, null
    }

    /// The type of the member at `index`'s value.
    @inlinable
    public func type(at index: Int) -> MemberType {
        storage.withUnsafeBytes { raw in
            switch Kind(rawValue: entry(index, raw).kind).unsafelyUnwrapped {
            case .asciiString, .utf8String: return .string
            case .number: return .number
            case .trueLiteral, .falseLiteral: return .boolean
            case .null: return .null
            }
        }
    }

    /// Whether the member at `index` is `null`.
    @inlinable
    public func isNull(at index: Int) -> Bool {
        storage.withUnsafeBytes { raw in entry(index, raw).kind == Kind.null.rawValue }
    }

    /// The member at `index` as a number, `nil` when it is not one.
    @inlinable
    public func number(at index: Int) -> Double? {
        storage.withUnsafeBytes { raw in
            let e = entry(index, raw)
            return e.kind == Kind.number.rawValue ? e.number : nil
        }
    }

    /// The member at `index` as a string, `nil` when it is not one.
    @inlinable
    public func string(at index: Int) -> String? {
        storage.withUnsafeBytes { raw in
            let e = entry(index, raw)
            guard e.kind == Kind.asciiString.rawValue || e.kind == Kind.utf8String.rawValue else { return nil }
            return Self.string(raw.baseAddress! + Int(e.valueStart), Int(e.valueCount))
        }
    }

    /// The members as a ``JSONObject`` (what ``JSONValue/parse(_:keys:)-(UnsafeRawBufferPointer,_)`` gives for the text).
    public var object: JSONObject {
        storage.withUnsafeBytes { raw in
            var members: [JSONObject.Member] = []
            members.reserveCapacity(count)
            for i in 0..<count {
                let e = entry(i, raw)
                members.append(JSONObject.Member(key: Self.string(raw.baseAddress! + Int(e.keyStart), Int(e.keyCount)), value: value(e, raw)))
            }
            return JSONObject(uniqueMembers: members)
        }
    }

    /// The object's JSON text as it was read.
    public func withText<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[..<indexStart])) }
    }

    /// A `String` of `n` bytes of valid UTF-8 at `p` (as the parser makes it).
    @inlinable @inline(__always)
    static func string(_ p: UnsafeRawPointer, _ n: Int) -> String {
        let p = p.assumingMemoryBound(to: UInt8.self)
        if n <= 15 {
            return String(unsafeUninitializedCapacity: n) { buffer in
                buffer.baseAddress.unsafelyUnwrapped.initialize(from: p, count: n)
                return n
            }
        }
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }
}

extension JSONValue {
    /// Reads `bytes` as a ``FlatJSONObject``: a top-level object whose members are all
    /// scalars, with distinct plain-ASCII keys and strings without escapes. `nil` for any
    /// other text, valid or not: parse that with ``parse(_:keys:)-(UnsafeRawBufferPointer,_)``
    /// for its tree or its error.
    /// - Parameter keys: the reader's cache; its working stack is used, its keys are not.
    public static func parseFlatObject(_ bytes: UnsafeRawBufferPointer, keys: inout JSONKeyCache) -> FlatJSONObject? {
        guard let base = bytes.baseAddress, bytes.count > 0, bytes.count < Int(UInt32.max) else { return nil }
        // A reader whose records are not flat objects (nested values, escapes) tries again
        // only every 64th record: each try reads up to the first such value for nothing.
        if keys.flatSkips > 0 {
            keys.flatSkips -= 1
            return nil
        }
        var parser = JSONParser(base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        defer { parser.release() }
        let flat = parser.parseFlatObject(cache: &keys)
        if flat == nil && keys.stacks != nil { keys.flatSkips = 63 }
        return flat
    }
}

extension JSONParser {
    /// Scans a string at `pos` (see `scanString`): true when it is valid and has no escape
    /// (its content is then `lastStringStart..<lastStringEnd`).
    @inline(__always)
    mutating func scanUnescapedString() -> Bool {
        do { return try scanString() == nil } catch { return false }
    }

    /// See ``JSONValue/parseFlatObject(_:keys:)``. Every check is the full parser's own
    /// (`scanString`, `parseNumber`, `expectLiteral`): any text it would reject is `nil` here.
    /// A key is compared with the key at its position in the last object first (the records
    /// of one source list their fields in one order): while they match, no key is scanned and
    /// none can repeat another (the last object's keys were distinct).
    mutating func parseFlatObject(cache: inout JSONKeyCache) -> FlatJSONObject? {
        var entries = MoveStack<FlatJSONObject.Entry>()
        let stacks = cache.stacks
        if let stacks { swap(&entries, &stacks.flatEntries) }
        defer {
            entries.removeAll()
            if let stacks { swap(&entries, &stacks.flatEntries) } else { entries.release() }
        }
        skipWhitespace()
        guard pos < count, base[pos] == ASCII.openBrace else { return nil }
        pos += 1
        skipWhitespace()
        guard pos < count else { return nil }
        let shapeCount = cache.flatShape.count
        var onShape = stacks != nil
        if base[pos] == ASCII.closeBrace {
            pos += 1
        } else {
            while true {
                skipWhitespace()
                guard pos < count, base[pos] == ASCII.quote else { return nil }
                let keyStart: Int, keyCount: Int
                let i = entries.count
                if onShape && i < shapeCount, let n = cache.flatShapeMatch(i, base + pos, base + count) {
                    keyStart = pos + 1
                    keyCount = n
                    pos += n + 2
                } else {
                    onShape = false
                    guard scanUnescapedString(), lastStringPlainASCII else { return nil }  // escaped or non-ASCII key
                    keyStart = lastStringStart
                    keyCount = lastStringEnd - lastStringStart
                    for j in 0..<i {
                        let e = entries.elements[j]
                        if Int(e.keyCount) == keyCount && memcmp(base + Int(e.keyStart), base + keyStart, keyCount) == 0 { return nil }  // repeated key
                    }
                }
                skipWhitespace()
                guard pos < count, base[pos] == ASCII.colon else { return nil }
                pos += 1
                skipWhitespace()
                guard pos < count else { return nil }
                let valueStart = pos
                var entry: FlatJSONObject.Entry
                switch base[pos] {
                case ASCII.quote:
                    guard scanUnescapedString() else { return nil }  // escaped (or malformed)
                    entry = .init(keyStart: keyStart, keyCount: keyCount, valueStart: lastStringStart, valueCount: lastStringEnd - lastStringStart,
                                  kind: lastStringPlainASCII ? .asciiString : .utf8String, number: 0)
                case ASCII.minus, ASCII.zero...ASCII.nine:
                    let d: Double
                    do { d = try parseNumber() } catch { return nil }
                    entry = .init(keyStart: keyStart, keyCount: keyCount, valueStart: valueStart, valueCount: pos - valueStart, kind: .number, number: d)
                case ASCII.lowerT:
                    do { try expectLiteral("true") } catch { return nil }
                    entry = .init(keyStart: keyStart, keyCount: keyCount, valueStart: valueStart, valueCount: 4, kind: .trueLiteral, number: 0)
                case ASCII.lowerF:
                    do { try expectLiteral("false") } catch { return nil }
                    entry = .init(keyStart: keyStart, keyCount: keyCount, valueStart: valueStart, valueCount: 5, kind: .falseLiteral, number: 0)
                case ASCII.lowerN:
                    do { try expectLiteral("null") } catch { return nil }
                    entry = .init(keyStart: keyStart, keyCount: keyCount, valueStart: valueStart, valueCount: 4, kind: .null, number: 0)
                default:
                    return nil  // a nested object or array, or malformed
                }
                entries.push(entry)
                skipWhitespace()
                guard pos < count else { return nil }
                let b = base[pos]
                pos += 1
                if b == ASCII.comma { continue }
                if b == ASCII.closeBrace { break }
                return nil
            }
        }
        skipWhitespace()
        guard pos == count else { return nil }
        let n = entries.count
        if stacks != nil && !(onShape && n == shapeCount) { cache.recordFlatShape(base, entries.elements, n) }
        let stride = MemoryLayout<FlatJSONObject.Entry>.stride
        let textCount = count
        let index = UnsafeRawBufferPointer(start: n > 0 ? UnsafeRawPointer(entries.elements) : nil, count: n * stride)
        let storage = Array(ConcatenatedBytes(UnsafeRawBufferPointer(start: base, count: textCount), index))
        return FlatJSONObject(storage: storage, indexStart: textCount, count: n, shape: stacks == nil ? nil : cache.flatShapeID)
    }
}

extension JSONKeyCache {
    /// The length of the last flat object's key `i` when the string token at `p` (its opening
    /// quote; `end` is the end of the input) is exactly that key: its bytes, then the closing
    /// quote (the shape's keys hold no quote, backslash or control byte).
    @inline(__always)
    func flatShapeMatch(_ i: Int, _ p: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Int? {
        let (start, n) = flatShape[i]
        guard end - p > n + 1, p[n + 1] == ASCII.quote else { return nil }
        let matches = flatShapeBytes.withUnsafeBufferPointer { b -> Bool in
            let key = UnsafeRawPointer(b.baseAddress.unsafelyUnwrapped + start), text = UnsafeRawPointer(p + 1)
            // A key of up to 16 bytes compared a word at a time when the input has the words (the
            // shape's bytes end with 16 bytes of padding): a `memcmp` call cost ~20 instructions a key.
            if n <= 16 && end - (p + 1) >= 16 {
                @inline(__always) func mask(_ bytes: Int) -> UInt64 { bytes >= 8 ? ~0 : (1 << (UInt64(bytes) &* 8)) &- 1 }
                let first = (key.loadUnaligned(as: UInt64.self) ^ text.loadUnaligned(as: UInt64.self)) & mask(n)
                guard n > 8 else { return first == 0 }
                let second = (key.loadUnaligned(fromByteOffset: 8, as: UInt64.self) ^ text.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) & mask(n - 8)
                return first | second == 0
            }
            return n == 0 || memcmp(key, text, n) == 0
        }
        return matches ? n : nil
    }

    /// Makes the keys of `entries` (in the text at `base`) the shape the next flat object is
    /// compared with, under a new generation.
    mutating func recordFlatShape(_ base: UnsafePointer<UInt8>, _ entries: UnsafePointer<FlatJSONObject.Entry>, _ n: Int) {
        flatShape.removeAll(keepingCapacity: true)
        flatShapeBytes.removeAll(keepingCapacity: true)
        for i in 0..<n {
            let e = entries[i]
            flatShape.append((flatShapeBytes.count, Int(e.keyCount)))
            flatShapeBytes.append(contentsOf: UnsafeBufferPointer(start: base + Int(e.keyStart), count: Int(e.keyCount)))
        }
        flatShapeBytes.append(contentsOf: repeatElement(0, count: 16))  // the padding `flatShapeMatch` reads words into
        flatShapeID = FlatJSONObject.Shape(cache: flatShapeID.cache, generation: flatShapeID.generation &+ 1)
    }
}
