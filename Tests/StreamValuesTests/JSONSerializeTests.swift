import Testing

@testable import StreamValues

@Suite("JSON serialisation")
struct JSONSerializeTests {
    @Test func compactDeterministicOutput() {
        let v: JSONValue = ["z": 1, "a": [true, false, nil], "m": ["y": "x", "b": 2.5], "e": [:], "l": []]
        #expect(v.serializedString() == #"{"z":1,"a":[true,false,null],"m":{"y":"x","b":2.5},"e":{},"l":[]}"#)
        #expect(v.serialized() == Array(v.serializedString().utf8))
        #expect(v.description == v.serializedString())
        var buffer: [UInt8] = Array("prefix:".utf8)
        JSONValue.string("s").serialize(into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"prefix:"s""#)
    }

    @Test func numberFormatting() {
        let cases: [(Double, String)] = [
            (3, "3"), (3.0, "3"), (-3, "-3"), (0, "0"), (-0.0, "-0"), (59.9, "59.9"), (1e-7, "1e-7"),
            (12_345_678_901_234, "12345678901234"), (0.1, "0.1"), (-2.5, "-2.5"),
            (9_007_199_254_740_992, "9007199254740992"), (-9_007_199_254_740_992, "-9007199254740992"),
            (9_007_199_254_740_994, "9.007199254740994e+15"), (1e21, "1e+21"), (1e300, "1e+300"),
            (.leastNonzeroMagnitude, "5e-324"), (1.5e-10, "1.5e-10"), (.greatestFiniteMagnitude, "1.7976931348623157e+308"),
            (123.456, "123.456"), (0.30000000000000004, "0.30000000000000004"),
            (.infinity, "null"), (-.infinity, "null"), (.nan, "null"),
        ]
        for (d, expected) in cases {
            #expect(JSONValue.number(d).serializedString() == expected, "\(d)")
        }
    }

    @Test func stringEscaping() {
        #expect(JSONValue.string("a\"b\\c/d").serializedString() == #""a\"b\\c/d""#)
        #expect(JSONValue.string("\u{8}\u{c}\n\r\t").serializedString() == #""\b\f\n\r\t""#)
        #expect(JSONValue.string("\u{0}\u{1}\u{1f}\u{7f}").serializedString() == "\"\\u0000\\u0001\\u001f\u{7f}\"")
        #expect(JSONValue.string("é日😀").serializedString() == "\"é日😀\"")
        #expect(JSONValue.object(["k\"\n": "v"]).serializedString() == #"{"k\"\n":"v"}"#)
    }

    /// Parse → serialise → parse gives the same value, and serialising is a fixed point.
    @Test(arguments: [
        #"{"a":"\u00e9\u4e2d\ud83d\ude00","b":"\\\"\/\b\f\n\r\t\u0001"}"#,
        #"[1e-7,-0,12345678901234,59.9,0.1,-1.5E+300,5e-324,1.7976931348623157e308,123456789012345678901]"#,
        #"{"deep":[[[[{"x":[{"y":{"z":[null,true,false,"",{},[]]}}]}]]]]}"#,
        #"{"emoji":"👩‍👩‍👧‍👦","rtl":"שלום","combining":"e\u0301","nul":"a\u0000b"}"#,
        #"  {"ws" : [ 1 , 2 ] , "n" : -0.0e0 }  "#,
        #""just a string""#,
        #"-12.5e-3"#,
        #"{"z":1,"y":2,"x":3,"w":{"b":1,"a":2}}"#,
    ])
    func roundTrip(_ text: String) throws {
        let v = try JSONValue.parse(text)
        let once = v.serialized()
        let back = try JSONValue.parse(once)
        #expect(back == v)
        #expect(back.serialized() == once)
        #expect(back.objectValue?.keys == v.objectValue?.keys)
    }

    @Test func roundTripPreservesSpecificForms() throws {
        #expect(try JSONValue.parse("[1e-7,-0,12345678901234,59.9,1.0,1E2]").serializedString()
            == "[1e-7,-0,12345678901234,59.9,1,100]")
        #expect(try JSONValue.parse(#""\u00e9\ud83d\ude00\u001F\u007f""#).serializedString()
            == "\"é😀\\u001f\u{7f}\"")
        #expect(try JSONValue.parse(#"{"b":1,"a":2}"#).serializedString() == #"{"b":1,"a":2}"#)
    }

    /// Random trees survive a round trip.
    @Test func randomTreesRoundTrip() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<500 {
            let v = RandomJSON.value(&rng)
            let bytes = v.serialized()
            let back = try JSONValue.parse(bytes)
            #expect(back == v, "\(String(decoding: bytes, as: UTF8.self))")
            #expect(back.serialized() == bytes)
        }
    }
}
