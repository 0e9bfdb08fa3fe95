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
}
