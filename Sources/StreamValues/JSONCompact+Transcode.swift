// JSON text straight to the compact encoding, without building a JSONValue tree.

extension JSONCompact {
    /// Appends the compact encoding of the JSON text `json` to `out`: exactly what
    /// `encode(try JSONValue.parse(json), into: &out)` appends, and the same errors, without
    /// building the tree. See ``Transcoder``; a loop over many texts keeps one transcoder.
    ///
    /// - Throws: ``JSONParseError`` as ``JSONValue/parse(_:)-(UnsafeRawBufferPointer)`` does.
    public static func transcode(json: UnsafeRawBufferPointer, into out: inout [UInt8]) throws(JSONParseError) {
        var transcoder = Transcoder()
        try transcoder.transcode(json: json, into: &out)
    }

    /// Transcodes JSON text to the compact encoding without building a ``JSONValue`` tree (no
    /// allocation per object, array or string); reuse one for many texts (it keeps its buffer
    /// of key fingerprints). Objects that may repeat a key, and malformed text, go through
    /// ``JSONValue/parse(_:)-(UnsafeRawBufferPointer)``, so the bytes and errors are the tree's.
    public struct Transcoder {
        /// Key fingerprints of the objects being read (duplicate-key detection).
        var fingerprints: [UInt64] = []

        /// Creates a transcoder.
        public init() {}

        /// Appends the compact encoding of the JSON text `json` to `out`: exactly what
        /// `encode(try JSONValue.parse(json), into: &out)` appends.
        ///
        /// - Throws: ``JSONParseError`` as ``JSONValue/parse(_:)-(UnsafeRawBufferPointer)`` does.
        public mutating func transcode(json: UnsafeRawBufferPointer, into out: inout [UInt8]) throws(JSONParseError) {
            let start = out.count
            if let base = json.baseAddress, json.count > 0 {
                var parser = JSONParser(base: base.assumingMemoryBound(to: UInt8.self), count: json.count)
                defer { parser.release() }
                fingerprints.removeAll(keepingCapacity: true)
                let done: Bool
                do {
                    done = try value(&parser, &out)
                    parser.skipWhitespace()
                } catch {
                    done = false
                }
                if done && parser.pos == parser.count { return }
            }
            // The tree's way: the parser's own duplicate-key rule and error.
            out.removeSubrange(start...)
            encode(try JSONValue.parse(json), into: &out)
        }

        /// Transcodes one value; `false` when an object may repeat a key (the caller falls back).
        mutating func value(_ p: inout JSONParser, _ out: inout [UInt8]) throws(JSONParseError) -> Bool {
            p.skipWhitespace()
            guard p.pos < p.count else { throw JSONParseError(.unexpectedEndOfInput, at: p.pos) }
            switch p.base[p.pos] {
            case ASCII.quote:
                out.append(JSONCompact.string)
                _ = try string(&p, &out)
                return true
            case ASCII.openBrace:
                return try container(&p, &out, object: true)
            case ASCII.openBracket:
                return try container(&p, &out, object: false)
            case ASCII.minus, ASCII.zero...ASCII.nine:
                encodeNumber(try p.parseNumber(), into: &out)
                return true
            case ASCII.lowerT:
                try p.expectLiteral("true")
                out.append(JSONCompact.trueTag)
                return true
            case ASCII.lowerF:
                try p.expectLiteral("false")
                out.append(JSONCompact.falseTag)
                return true
            case ASCII.lowerN:
                try p.expectLiteral("null")
                out.append(JSONCompact.null)
                return true
            default:
                throw p.unexpected()
            }
        }

        /// Appends the string at `p.pos` (varint length, UTF-8); returns where its bytes start in `out`.
        mutating func string(_ p: inout JSONParser, _ out: inout [UInt8]) throws(JSONParseError) -> Int {
            if let escaped = try p.scanString() {
                appendString(escaped, into: &out)
                return out.count - escaped.utf8.count
            }
            let n = p.lastStringEnd - p.lastStringStart
            appendVarint(UInt64(n), to: &out)
            let at = out.count
            out.append(contentsOf: UnsafeBufferPointer(start: p.base + p.lastStringStart, count: n))
            return at
        }

        mutating func container(_ p: inout JSONParser, _ out: inout [UInt8], object: Bool) throws(JSONParseError) -> Bool {
            try p.enter()
            out.append(object ? JSONCompact.object : JSONCompact.array)
            let countAt = out.count
            out.append(0)
            p.skipWhitespace()
            if p.pos < p.count && p.base[p.pos] == (object ? ASCII.closeBrace : ASCII.closeBracket) {
                p.pos += 1
                p.depth -= 1
                return true
            }
            let firstKey = fingerprints.count
            var n: UInt64 = 0
            while true {
                if object {
                    p.skipWhitespace()
                    guard p.pos < p.count, p.base[p.pos] == ASCII.quote else { throw p.unexpected() }
                    let keyAt = try string(&p, &out)
                    let fingerprint = out.withUnsafeBufferPointer { JSONParser.fingerprint($0.baseAddress! + keyAt, $0.count - keyAt) }
                    for i in firstKey..<fingerprints.count where fingerprints[i] == fingerprint { return false }
                    fingerprints.append(fingerprint)
                    p.skipWhitespace()
                    guard p.pos < p.count, p.base[p.pos] == ASCII.colon else { throw p.unexpected() }
                    p.pos += 1
                }
                guard try value(&p, &out) else { return false }
                n += 1
                p.skipWhitespace()
                guard p.pos < p.count else { throw JSONParseError(.unexpectedEndOfInput, at: p.pos) }
                let b = p.base[p.pos]
                p.pos += 1
                if b == ASCII.comma { continue }
                if b == (object ? ASCII.closeBrace : ASCII.closeBracket) { break }
                p.pos -= 1
                throw p.unexpected()
            }
            fingerprints.removeSubrange(firstKey...)
            p.depth -= 1
            // The count went in as one byte; a larger one needs room.
            let size = varintSize(n)
            if size > 1 { out.insert(contentsOf: repeatElement(0, count: size - 1), at: countAt + 1) }
            var v = n
            for i in 0..<size {
                out[countAt + i] = i == size - 1 ? UInt8(v) : UInt8(truncatingIfNeeded: v) | 0x80
                v >>= 7
            }
            return true
        }
    }
}
