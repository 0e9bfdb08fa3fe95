import Testing

@testable import StreamValues

@Suite("FlatJSONObject: a record of scalar members read without a tree")
struct FlatJSONObjectTests {
    static func flat(_ text: String, keys: inout JSONKeyCache) -> FlatJSONObject? {
        Array(text.utf8).withUnsafeBytes { JSONValue.parseFlatObject($0, keys: &keys) }
    }

    static func flat(_ text: String) -> FlatJSONObject? {
        var keys = JSONKeyCache()
        return flat(text, keys: &keys)
    }

    /// The full parser's object for `text` (`nil`: not an object, or rejected).
    static func tree(_ text: [UInt8]) -> JSONObject? {
        (try? JSONValue.parse(text))?.objectValue
    }

    @Test("objects of scalars read as the full parser reads them: same members in the same order, same values")
    func sameAsTheParser() throws {
        let texts = [
            #"{"orderId":"o-1","userId":"u-42","productId":"p-7","category":"books","price":19.99,"quantity":2,"timestamp":"2024-12-14T12:00:00.000Z"}"#,
            #"{}"#, " { } ", "\t{\r\n\"a\" : 1 ,\n\"b\":-0.5e-3 }\n",
            #"{"t":true,"f":false,"n":null,"z":0,"neg":-12345678901234567890,"big":1.7976931348623157e308,"tiny":5e-324}"#,
            #"{"long":"a string well over fifteen bytes long","short":"abc","empty":""}"#,
            #"{"uni":"é中😀","line":"\#u{2028}"}"#,
            #"{"":"empty key","a.b":"a dotted key"}"#,
        ]
        for text in texts {
            let f = try #require(Self.flat(text), "\(text)")
            let o = try #require(Self.tree(Array(text.utf8)))
            #expect(f.object == o, "\(text)")
            #expect(f.object.keys == o.keys, "member order: \(text)")
            #expect(f.count == o.count)
            for (i, key) in o.keys.enumerated() {
                var hint = 0
                #expect(f.index(ofKey: key, hint: &hint) == i, "\(key) in \(text)")
                #expect(hint == i)
                #expect(f.value(forKey: key, hint: &hint) == o[key])
                #expect(f.key(at: i) == key)
            }
            f.withText { #expect(Array($0) == Array(text.utf8)) }
        }
    }

    @Test("anything else is left to the full parser: nested values, escapes, non-ASCII or repeated keys, other top-level values, malformed text")
    func notFlat() {
        for text in [
            #"{"a":{"b":1}}"#, #"{"a":[1]}"#, #"{"a":"x\"y"}"#, #"{"a":"\u0041"}"#, #"{"a\n":1}"#, #"{"é":1}"#,
            #"{"a":1,"a":2}"#, #"{"a":1,"b":2,"a":3}"#, "[1]", #""s""#, "1", "null",
            #"{"a":1,}"#, #"{"a":1"#, #"{"a" 1}"#, #"{"a":01}"#, #"{"a":1e400}"#, #"{"a":tru}"#, #"{"a":"x"} x"#, "{", "",
            "{\"a\":\"\u{1}\"}",
        ] {
            #expect(Self.flat(text) == nil, "\(text)")
        }
        // Invalid UTF-8 in a string.
        var keys = JSONKeyCache()
        let bytes: [UInt8] = Array(#"{"a":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect(bytes.withUnsafeBytes { JSONValue.parseFlatObject($0, keys: &keys) } == nil)
    }

    @Test("after a record that is not flat the reader tries again 64 records later; a flat one never stops it")
    func retriesAfterANestedRecord() {
        var keys = JSONKeyCache()
        #expect(Self.flat(#"{"a":1}"#, keys: &keys) != nil)
        #expect(Self.flat(#"{"a":{"b":1}}"#, keys: &keys) == nil)
        for _ in 0..<63 { #expect(Self.flat(#"{"a":1}"#, keys: &keys) == nil) }
        #expect(Self.flat(#"{"a":1}"#, keys: &keys) != nil)
        #expect(Self.flat(#"{"a":2}"#, keys: &keys) != nil)
    }

    @Test("lookups: the hint is tried first and moved to where the key was; absent keys, prefixes and non-ASCII names find nothing, as in the tree")
    func lookups() throws {
        let text = #"{"K":1,"price":2,"pri":3,"quantity":4}"#
        let f = try #require(Self.flat(text))
        let o = try #require(Self.tree(Array(text.utf8)))
        var hint = 3
        #expect(f.index(ofKey: "price", hint: &hint) == 1 && hint == 1)
        hint = 99
        #expect(f.index(ofKey: "quantity", hint: &hint) == 3 && hint == 3)
        for name in ["pric", "prices", "", "Price", "\u{212A}", "quantity "] {
            var h = 0, treeHint = 0
            #expect(f.value(forKey: name, hint: &h) == o.value(forKey: name, hint: &treeHint), "\(name.debugDescription)")
            #expect(f.index(ofKey: name, hint: &h) == nil)
        }
        // The tree finds a key whatever the hint: a canonical equivalent of another length is not it.
        for hint in 0..<4 {
            var treeHint = hint
            #expect(o.value(forKey: "\u{212A}", hint: &treeHint) == nil, "hint \(hint)")
        }
        #expect(f.type(at: 0) == .number && f.number(at: 2) == 3)
    }

    @Test("a string member's bytes, a type per member; numbers as the parser converts them")
    func members() throws {
        let f = try #require(Self.flat(#"{"s":"2024-12-14T12:00:00Z","n":-1.5e2,"b":false,"z":null}"#))
        #expect(f.withStringBytes(at: 0) { String(decoding: $0, as: UTF8.self) } == "2024-12-14T12:00:00Z")
        #expect(f.withStringBytes(at: 1) { _ in 1 } == nil)
        #expect([0, 1, 2, 3].map(f.type(at:)) == [.string, .number, .boolean, .null])
        #expect(f.number(at: 1) == -150 && f.number(at: 0) == nil)
        #expect(f.isNull(at: 3) && !f.isNull(at: 2))
    }

    @Test("mutated records: accepted only when the full parser accepts them, with the same object; every serialised object of unique ASCII keys and scalar values without escapes is accepted")
    func mutations() throws {
        var rng = SplitMix64(seed: 0xF1A7)
        var corpus: [[UInt8]] = JSONParserFuzzTests.seedDocuments.map { Array($0.utf8) }
        for _ in 0..<200 {
            var o = JSONObject()
            for _ in 0..<rng.int(9) {
                let key = String((0..<rng.int(10)).map { _ in Character(Unicode.Scalar(UInt8(0x61 + rng.int(26)))) })
                let v = RandomJSON.value(&rng, depth: 5)  // scalars only at this depth
                o[key] = v
            }
            let text = JSONValue.object(o).serialized()
            corpus.append(text)
            if !text.contains(UInt8(ascii: "\\")) {
                var keys = JSONKeyCache()
                let f = text.withUnsafeBytes { JSONValue.parseFlatObject($0, keys: &keys) }
                #expect(f?.object == o, "\(String(decoding: text, as: UTF8.self))")
            }
        }
        var accepted = 0
        for iteration in 0..<20_000 {
            var input = corpus[rng.int(corpus.count)]
            for _ in 0...rng.int(2) { JSONParserFuzzTests.mutate(&input, corpus: corpus, rng: &rng) }
            var keys = JSONKeyCache()
            let f = input.withUnsafeBytes { JSONValue.parseFlatObject($0, keys: &keys) }
            guard let f else { continue }
            accepted += 1
            let o = Self.tree(input)
            #expect(o != nil && f.object == o && f.object.keys == o?.keys, "iteration \(iteration): \(JSONParserFuzzTests.show(input))")
            if o == nil || f.object != o { return }
        }
        #expect(accepted > 1_000, "only \(accepted) mutants were flat objects")
    }
}
