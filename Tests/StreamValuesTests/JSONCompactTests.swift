import Foundation
import Testing

@testable import StreamValues

@Suite("JSON compact encoding")
struct JSONCompactTests {
    /// Decodes what was encoded, and the encoding is as long as `encodedSize` says and validates.
    static func roundTrip(_ v: JSONValue) -> (decoded: JSONValue, bytes: [UInt8]) {
        let bytes = JSONCompact.encoded(v)
        #expect(bytes.count == JSONCompact.encodedSize(v), "\(v)")
        #expect(bytes.withUnsafeBytes { JSONCompact.validatedLength(of: $0) } == bytes.count, "\(v)")
        return (JSONCompact.decode(bytes), bytes)
    }

    @Test("random trees round-trip, member order included")
    func randomRoundTrip() {
        var rng = SplitMix64(seed: 13)
        for _ in 0..<2000 {
            let v = RandomJSON.value(&rng)
            let (decoded, _) = Self.roundTrip(v)
            #expect(decoded == v)
            // Same member order too: the serialised text is identical.
            #expect(decoded.serializedString() == v.serializedString())
        }
    }

    @Test("numbers keep their exact Double: -0, ±2^53, fractions, extremes")
    func numbers() {
        let cases: [Double] = [
            0, -0.0, 1, 127, 128, -1, -128, 255, 1_733_000_000_000, -1_733_000_000_000, 9_007_199_254_740_992,
            -9_007_199_254_740_992, 9_007_199_254_740_994, 0.1, -2.5, 1e300, .leastNonzeroMagnitude,
            .greatestFiniteMagnitude, .infinity, -.infinity,
        ]
        for d in cases {
            let (decoded, _) = Self.roundTrip(.number(d))
            #expect(decoded.doubleValue?.bitPattern == d.bitPattern, "\(d)")
        }
        #expect(JSONCompact.encoded(.number(5)) == [0x85])
        #expect(JSONCompact.encoded(.number(128)) == [0x03, 0x80, 0x02])
        #expect(JSONCompact.encoded(.number(-0.0)).count == 9)
    }

    @Test("a purchase_stats state takes fewer bytes than its JSON text")
    func smallerThanJSON() {
        let v: JSONValue = ["orders": 1, "items": 3, "cents": 12345, "last": 1_733_000_000_000, "categories": ["electronics": 12345]]
        let (decoded, bytes) = Self.roundTrip(v)
        #expect(decoded == v)
        #expect(bytes.count < v.serialized().count * 3 / 4, "\(bytes.count) vs \(v.serialized().count)")
    }

    @Test("validation rejects truncated, unknown and too deeply nested encodings")
    func validation() {
        let v: JSONValue = ["a": [1, "xyz", 2.5, nil, true], "b": ["c": 1_000_000]]
        let bytes = JSONCompact.encoded(v)
        for n in 0..<bytes.count {
            let prefix = Array(bytes[0..<n])
            #expect(prefix.withUnsafeBytes { JSONCompact.validatedLength(of: $0) } == nil, "prefix of \(n) bytes")
        }
        #expect([UInt8]([0x08]).withUnsafeBytes { JSONCompact.validatedLength(of: $0) } == nil)
        #expect([UInt8]([0x06, 0x05, 0x80]).withUnsafeBytes { JSONCompact.validatedLength(of: $0) } == nil)
        // Arrays of one element nested maxNestingDepth + 1 deep, around a null; then as deep as allowed.
        let deep: [UInt8] = Array(repeating: [0x06, 0x01] as [UInt8], count: JSONValue.maxNestingDepth + 1).flatMap { $0 } + [0x00]
        #expect(deep.withUnsafeBytes { JSONCompact.validatedLength(of: $0) } == nil)
        let ok: [UInt8] = Array(repeating: [0x06, 0x01] as [UInt8], count: JSONValue.maxNestingDepth).flatMap { $0 } + [0x00]
        #expect(ok.withUnsafeBytes { JSONCompact.validatedLength(of: $0) } == ok.count)
        // A value followed by more bytes: the length is that of the value.
        let two = JSONCompact.encoded(.string("ab")) + [0x00]
        #expect(two.withUnsafeBytes { JSONCompact.validatedLength(of: $0) } == 4)
    }

    @Test("decoding bytes that were never encoded does not trap (decode trusts, but stays in bounds)")
    func decodeGarbage() {
        var rng = SplitMix64(seed: 31)
        var decodedSome = 0
        for i in 0..<20_000 {
            var bytes = (0..<Int(rng.next() % 24)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Every tenth: a valid encoding cut short or with a byte flipped.
            if i % 10 == 0 {
                let valid = JSONCompact.encoded(RandomJSON.value(&rng))
                bytes = Array(valid.prefix(Int(rng.next() % UInt64(valid.count + 1))))
                if !bytes.isEmpty { bytes[Int(rng.next() % UInt64(bytes.count))] ^= 0xFF }
            }
            if case .null = JSONCompact.decode(bytes) {} else { decodedSome += 1 }
        }
        #expect(decodedSome > 1000)
    }

    /// What transcoding `text` gives, and what parsing and encoding give (bytes or error).
    static func both(_ text: String) -> (transcoded: Result<[UInt8], JSONParseError>, viaTree: Result<[UInt8], JSONParseError>) {
        both(bytes: Array(text.utf8))
    }

    static func both(bytes: [UInt8]) -> (transcoded: Result<[UInt8], JSONParseError>, viaTree: Result<[UInt8], JSONParseError>) {
        let transcoded = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) -> [UInt8] in
                var out: [UInt8] = [0xEE]  // something before: transcoding appends
                try JSONCompact.transcode(json: raw, into: &out)
                return Array(out.dropFirst())
            }
        }
        let viaTree = Result { () throws(JSONParseError) -> [UInt8] in JSONCompact.encoded(try JSONValue.parse(bytes)) }
        return (transcoded, viaTree)
    }

    /// The transcoder alone (no fallback to the tree): `nil` when it gave up.
    static func fastPath(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buf -> [UInt8]? in
            guard let base = buf.baseAddress else { return nil }
            var p = JSONParser(base: base, count: buf.count)
            defer { p.release() }
            var t = JSONCompact.Transcoder()
            var out: [UInt8] = []
            guard (try? t.value(&p, &out)) == true else { return nil }
            return out
        }
    }

    @Test("transcoding JSON text gives the bytes of parse + encode, for random trees in compact and spaced text")
    func transcodeRandom() throws {
        var rng = SplitMix64(seed: 29)
        for _ in 0..<2000 {
            let v = RandomJSON.value(&rng)
            let compact = v.serializedString()
            let spaced = compact.replacingOccurrences(of: ",", with: " ,\n ").replacingOccurrences(of: ":", with: " : ")
            for text in [compact, " \t" + compact + "\n "] {
                let (t, tree) = Self.both(text)
                #expect(try t.get() == tree.get(), "\(text)")
                #expect(JSONCompact.decode(try t.get()) == v)
            }
            // Unique keys: the transcoder itself did it.
            #expect(Self.fastPath(compact) == JSONCompact.encoded(v), "\(compact)")
            // Spacing inside strings changes them: only compare with the tree.
            let (t, tree) = Self.both(spaced)
            #expect(t == tree, "\(spaced)")
        }
    }

    @Test("transcoding: escapes, repeated keys (first position, last value), long containers, errors as the parser's")
    func transcodeCases() throws {
        let big = "[" + (0..<300).map { String($0) }.joined(separator: ",") + "]"
        let wide = "{" + (0..<200).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
        let texts = [
            #"{"a":1,"b":2,"a":3}"#, #"{"x":{"y":1,"y":[1,2]},"z":"\u00e9\n\"q\"\ud83d\ude00"}"#, #"{"":1,"\u0000":2}"#,
            big, wide, "{\"a\":" + big + ",\"b\":" + wide + "}", "[[],{},[{}],\"\"]", "-0", "1e400", "0.1", "-12345678901234567890",
            "", " ", "{", "[1,]", "{\"a\" 1}", "nul", "tru", "\"abc", "\"\\x\"", "{} x", "[1 2]", "\u{1}", "\"\u{1}\"",
            String(repeating: "[", count: 129) + String(repeating: "]", count: 129),
            String(repeating: "[", count: 128) + String(repeating: "]", count: 128),
        ]
        for text in texts {
            let (t, tree) = Self.both(text)
            #expect(t == tree, "\(text)")
        }
        #expect(Self.fastPath(#"{"a":1,"b":2,"a":3}"#) == nil, "a repeated key goes through the tree")
        #expect(Self.fastPath(wide) == (try Self.both(wide).viaTree.get()), "a count above 127 is patched in place")
        // Invalid UTF-8 is rejected as the parser does.
        let (t, tree) = Self.both(bytes: [0x22, 0xC3, 0x28, 0x22])
        #expect(t == tree)
        guard case .failure = t else {
            Issue.record("invalid UTF-8 was accepted")
            return
        }
    }
}
