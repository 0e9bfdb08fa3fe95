import Testing

@testable import StreamValues

@Suite("JSON parsing")
struct JSONParseTests {
    @Test func scalars() throws {
        #expect(try JSONValue.parse("null") == .null)
        #expect(try JSONValue.parse("true") == .bool(true))
        #expect(try JSONValue.parse("false") == .bool(false))
        #expect(try JSONValue.parse("  42 \n") == .number(42))
        #expect(try JSONValue.parse("\"hi\"") == .string("hi"))
        #expect(try JSONValue.parse("[]") == .array([]))
        #expect(try JSONValue.parse("{}") == .object(JSONObject()))
        #expect(try JSONValue.parse(" \t\r\n[ 1 , 2 ]\r\n ") == [1, 2])
    }

    @Test func nestedDocument() throws {
        let text = #"{"id":"o-1","items":[{"sku":"A","qty":2,"price":9.99},{"sku":"B","qty":1,"price":0.5}],"#
            + #""paid":true,"coupon":null,"meta":{"tags":["x","y"],"empty":{},"none":[]}}"#
        let v = try JSONValue.parse(text)
        #expect(v["id"]?.stringValue == "o-1")
        #expect(v["items"]?[1]?["sku"] == "B")
        #expect(v["items"]?[0]?["qty"]?.intValue == 2)
        #expect(v["items"]?[0]?["price"]?.doubleValue == 9.99)
        #expect(v["paid"]?.boolValue == true)
        #expect(v["coupon"]?.isNull == true)
        #expect(v["missing"] == nil)
        #expect(v["items"]?[5] == nil)
        #expect(v["meta"]?["tags"]?.arrayValue == ["x", "y"])
        #expect(v["meta"]?["empty"]?.objectValue?.isEmpty == true)
        #expect(v.objectValue?.keys == ["id", "items", "paid", "coupon", "meta"])
        let expected: JSONValue = [
            "id": "o-1",
            "items": [["sku": "A", "qty": 2, "price": 9.99], ["sku": "B", "qty": 1, "price": 0.5]],
            "paid": true, "coupon": nil, "meta": ["tags": ["x", "y"], "empty": [:], "none": []],
        ]
        #expect(v == expected)
    }

    @Test func overloadsAgree() throws {
        let text = #"{"a":[1,"é",{"b":null}]}"#
        let bytes = Array(text.utf8)
        let fromString = try JSONValue.parse(text)
        let fromBytes = try JSONValue.parse(bytes)
        let fromRaw = try bytes.withUnsafeBytes { try JSONValue.parse($0) }
        #expect(fromString == fromBytes)
        #expect(fromBytes == fromRaw)
    }

    @Test func stringEscapes() throws {
        #expect(try JSONValue.parse(#""a\"b\\c\/d\be\ff\ng\rh\ti""#) == .string("a\"b\\c/d\u{8}e\u{c}f\ng\rh\ti"))
        #expect(try JSONValue.parse(#""\u0041\u00e9\u4e2D\u0000""#) == .string("Aé中\u{0}"))
        // Surrogate pair → one astral scalar.
        #expect(try JSONValue.parse(#""\uD83D\uDE00!""#) == .string("😀!"))
        #expect(try JSONValue.parse(#""x\ud834\udd1ey""#) == .string("x𝄞y"))
        // Raw UTF-8 passes through, including 4-byte sequences.
        #expect(try JSONValue.parse("\"naïve – 日本 😀\"") == .string("naïve – 日本 😀"))
        // Escapes after non-ASCII and non-ASCII after escapes.
        #expect(try JSONValue.parse("\"é\\n日\\t😀\"") == .string("é\n日\t😀"))
    }

    /// Lone surrogates are accepted and replaced by U+FFFD (Swift strings cannot hold them).
    @Test("A special byte at every position of a string, around the 8-byte steps of the scan, is found")
    func specialBytesAtEveryPosition() throws {
        for length in 0...19 {
            let plain = String(repeating: "a", count: length)
            #expect(try JSONValue.parse("\"\(plain)\"") == .string(plain))
            #expect(try JSONValue.parse("{\"\(plain)\":1}") == .object(JSONObject([(plain, .number(1))])))
            for at in 0..<max(length, 1) where length > 0 {
                let head = String(repeating: "a", count: at), tail = String(repeating: "a", count: length - at - 1)
                // An escaped quote, an escaped backslash, two- and three-byte UTF-8.
                #expect(try JSONValue.parse("\"\(head)\\\"\(tail)\"") == .string(head + "\"" + tail))
                #expect(try JSONValue.parse("\"\(head)\\\\\(tail)\"") == .string(head + "\\" + tail))
                #expect(try JSONValue.parse("\"\(head)é\(tail)\"") == .string(head + "é" + tail))
                #expect(try JSONValue.parse("\"\(head)€\(tail)\"") == .string(head + "€" + tail))
                // The string ends early: what follows the quote is trailing input.
                #expect(throws: JSONParseError(.trailingCharacters(0x61), at: at + 2)) {
                    try JSONValue.parse("\"\(head)\"a\(tail)\"")
                }
                // A raw control character, DEL (allowed) and invalid UTF-8.
                for control: UInt8 in [0x00, 0x0A, 0x1F] {
                    let bytes = [0x22] + Array(head.utf8) + [control] + Array(tail.utf8) + [0x22]
                    #expect(throws: JSONParseError(.controlCharacterInString(control), at: at + 1)) { try JSONValue.parse(bytes) }
                }
                #expect(try JSONValue.parse([0x22] + Array(head.utf8) + [0x7F] + Array(tail.utf8) + [0x22]) == .string(head + "\u{7F}" + tail))
                #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22] + Array(head.utf8) + [0xFF] + Array(tail.utf8) + [0x22]) }
            }
        }
    }

    @Test func loneSurrogatesBecomeReplacementCharacter() throws {
        #expect(try JSONValue.parse(#""\uD800""#) == .string("\u{FFFD}"))
        #expect(try JSONValue.parse(#""a\uDC00b""#) == .string("a\u{FFFD}b"))
        #expect(try JSONValue.parse(#""\uD800\u0041""#) == .string("\u{FFFD}A"))
        #expect(try JSONValue.parse(#""\uD800\uD83D\uDE00""#) == .string("\u{FFFD}😀"))
        #expect(try JSONValue.parse(#""\uDE00\uD83D""#) == .string("\u{FFFD}\u{FFFD}"))
    }

    @Test func numbers() throws {
        let cases: [(String, Double)] = [
            ("0", 0), ("-0", -0.0), ("1", 1), ("-1", -1), ("59.9", 59.9), ("1e-7", 1e-7),
            ("1E+2", 100), ("1.5e3", 1500), ("12345678901234", 12_345_678_901_234),
            ("0.1", 0.1), ("0.000001", 0.000001), ("123.456e-2", 1.23456),
            ("9007199254740993", 9_007_199_254_740_992)  /* ties to even */, ("18446744073709551616", 18_446_744_073_709_551_616),
            ("1.7976931348623157e308", .greatestFiniteMagnitude), ("5e-324", .leastNonzeroMagnitude),
            ("2.2250738585072014e-308", 2.2250738585072014e-308),
            ("0.30000000000000004", 0.30000000000000004), ("1e22", 1e22), ("1e23", 1e23),
            ("123456789012345678901234567890", Double("123456789012345678901234567890")!),
            ("0.1234567890123456789", 0.1234567890123456789), ("1e-400", 0), ("0e999999", 0),
            ("-0.0e-5", -0.0),
        ]
        for (text, expected) in cases {
            let v = try JSONValue.parse(text)
            let d = try #require(v.doubleValue, "\(text)")
            #expect(d.bitPattern == expected.bitPattern, "\(text) → \(d), expected \(expected)")
        }
        #expect(try JSONValue.parse("-0").doubleValue?.sign == .minus)
    }

    /// Differential check against the standard library's correctly rounded conversion.
    @Test func numbersMatchStandardLibrary() throws {
        var rng = SplitMix64(seed: 42)
        for i in 0..<20_000 {
            let d: Double
            switch i % 4 {
            case 0: d = Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF)
            case 1: d = Double(Int64(bitPattern: rng.next()) % 1_000_000_000) / 1000
            case 2: d = Double(rng.next() % 100_000) / 100
            default: d = Double(bitPattern: rng.next() % 0x4330_0000_0000_0000)  // small / subnormal
            }
            let text = d.description
            let parsed = try JSONValue.parse(text).doubleValue
            #expect(parsed?.bitPattern == d.bitPattern, "\(text)")
            // Also via our own serialiser.
            let reparsed = try JSONValue.parse(JSONValue.number(d).serialized()).doubleValue
            #expect(reparsed?.bitPattern == d.bitPattern, "\(text)")
            // Decimal strings with many digits.
            let digits = "\(rng.next() % 1_000_000_000_000).\(rng.next())e\(Int(rng.next() % 40) - 20)"
            #expect(try JSONValue.parse(digits).doubleValue == Double(digits), "\(digits)")
        }
    }

    @Test func duplicateKeysKeepFirstPositionAndLastValue() throws {
        let v = try JSONValue.parse(#"{"a":1,"b":2,"a":3}"#)
        #expect(v.objectValue?.keys == ["a", "b"])
        #expect(v["a"] == 3)
        // Escaped and raw spellings of the same key are the same key.
        let escaped = try JSONValue.parse(#"{"\u0061":1,"b":2,"a":3,"é":4,"\u00e9":5,"k\"":6,"k\u0022":7}"#)
        #expect(escaped.objectValue?.keys == ["a", "b", "é", "k\""])
        #expect(escaped == ["a": 3, "b": 2, "é": 5, "k\"": 7])
        // Keys differing only in length or in their last bytes stay distinct.
        let similar = try JSONValue.parse(#"{"abcdefgh":1,"abcdefghi":2,"abcdefgi":3,"":4,"abcdefgh ":5}"#)
        #expect(similar.objectValue?.count == 5)
        #expect(similar[""] == 4)
        // Large objects take the hashed path.
        var text = "{"
        for i in 0..<100 { text += "\"k\(i)\":\(i)," }
        text += "\"k7\":\"dup\",\"k99\":null}"
        let big = try JSONValue.parse(text)
        #expect(big.objectValue?.count == 100)
        #expect(big["k7"] == "dup")
        #expect(big["k99"] == .some(.null))  // present, and null
        #expect(big.objectValue?.keys.last == "k99")
    }

    @Test func nestingLimit() throws {
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect(throws: Never.self) { try JSONValue.parse(ok) }
        let tooDeep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        #expect(throws: JSONParseError(.nestingTooDeep, at: 128)) { try JSONValue.parse(tooDeep) }
        let objects = String(repeating: #"{"a":"#, count: 200) + "1" + String(repeating: "}", count: 200)
        #expect(throws: JSONParseError(.nestingTooDeep, at: 640)) { try JSONValue.parse(objects) }
        // Far deeper than the limit must not overflow the stack.
        let huge = String(repeating: "[", count: 1_000_000)
        #expect(throws: JSONParseError(.nestingTooDeep, at: 128)) { try JSONValue.parse(huge) }
    }

    @Test func rejectsMalformedInputWithOffsets() {
        let cases: [(String, JSONParseError, String)] = [
            (#"{"a":}"#, .init(.unexpectedCharacter(0x7D), at: 5), "unexpected character '}' at byte 5"),
            (#"{"a":1,}"#, .init(.unexpectedCharacter(0x7D), at: 7), "unexpected character '}' at byte 7"),
            (#"[1,]"#, .init(.unexpectedCharacter(0x5D), at: 3), "unexpected character ']' at byte 3"),
            (#"[1 2]"#, .init(.unexpectedCharacter(0x32), at: 3), "unexpected character '2' at byte 3"),
            (#"{"a" 1}"#, .init(.unexpectedCharacter(0x31), at: 5), "unexpected character '1' at byte 5"),
            (#"{a:1}"#, .init(.unexpectedCharacter(0x61), at: 1), "unexpected character 'a' at byte 1"),
            (#"{"a":1"#, .init(.unexpectedEndOfInput, at: 6), "unexpected end of input at byte 6"),
            (#"{"a":"x}"#, .init(.unterminatedString, at: 5), "unterminated string starting at byte 5"),
            (#"["abc"#, .init(.unterminatedString, at: 1), "unterminated string starting at byte 1"),
            (#""abc\"#, .init(.unterminatedString, at: 0), "unterminated string starting at byte 0"),
            (#""\u12"#, .init(.unterminatedString, at: 0), "unterminated string starting at byte 0"),
            (#"{"a":1} x"#, .init(.trailingCharacters(0x78), at: 8), "unexpected trailing character 'x' at byte 8"),
            (#"1 2"#, .init(.trailingCharacters(0x32), at: 2), "unexpected trailing character '2' at byte 2"),
            (#"[1]]"#, .init(.trailingCharacters(0x5D), at: 3), "unexpected trailing character ']' at byte 3"),
            ("", .init(.unexpectedEndOfInput, at: 0), "unexpected end of input at byte 0"),
            ("   ", .init(.unexpectedEndOfInput, at: 3), "unexpected end of input at byte 3"),
            ("tru", .init(.unexpectedEndOfInput, at: 3), "unexpected end of input at byte 3"),
            ("nul1", .init(.unexpectedCharacter(0x31), at: 3), "unexpected character '1' at byte 3"),
            ("True", .init(.unexpectedCharacter(0x54), at: 0), "unexpected character 'T' at byte 0"),
            (#""a\x""#, .init(.invalidEscape, at: 2), "invalid escape sequence at byte 2"),
            (#""\u12G4""#, .init(.invalidUnicodeEscape, at: 1), "invalid \\u escape at byte 1"),
            ("\"a\nb\"", .init(.controlCharacterInString(0x0A), at: 2), "unescaped control character 0x0A in string at byte 2"),
            ("\"\t\"", .init(.controlCharacterInString(0x09), at: 1), "unescaped control character 0x09 in string at byte 1"),
            ("01", .init(.invalidNumber, at: 0), "invalid number at byte 0"),
            ("-", .init(.invalidNumber, at: 1), "invalid number at byte 1"),
            ("-a", .init(.invalidNumber, at: 1), "invalid number at byte 1"),
            ("1.", .init(.invalidNumber, at: 2), "invalid number at byte 2"),
            ("1.e5", .init(.invalidNumber, at: 2), "invalid number at byte 2"),
            ("1e", .init(.invalidNumber, at: 2), "invalid number at byte 2"),
            ("1e+", .init(.invalidNumber, at: 3), "invalid number at byte 3"),
            ("[.5]", .init(.unexpectedCharacter(0x2E), at: 1), "unexpected character '.' at byte 1"),
            ("+1", .init(.unexpectedCharacter(0x2B), at: 0), "unexpected character '+' at byte 0"),
            ("[1e400]", .init(.numberOutOfRange, at: 1), "number out of range at byte 1"),
            ("-1e309", .init(.numberOutOfRange, at: 0), "number out of range at byte 0"),
            ("NaN", .init(.unexpectedCharacter(0x4E), at: 0), "unexpected character 'N' at byte 0"),
            ("[Infinity]", .init(.unexpectedCharacter(0x49), at: 1), "unexpected character 'I' at byte 1"),
            ("{\"a\":1}\u{0}", .init(.trailingCharacters(0), at: 7), "unexpected trailing character 0x00 at byte 7"),
            ("// c\n1", .init(.unexpectedCharacter(0x2F), at: 0), "unexpected character '/' at byte 0"),
            ("[1,\"x\",{\"k\":[true,fals]}]", .init(.unexpectedCharacter(0x5D), at: 22), "unexpected character ']' at byte 22"),
        ]
        for (text, expected, message) in cases {
            do {
                let v = try JSONValue.parse(text)
                Issue.record("accepted \(text.debugDescription) as \(v)")
            } catch {
                #expect(error == expected, "\(text.debugDescription)")
                #expect(error.description == message, "\(text.debugDescription)")
            }
        }
    }

    @Test func rejectsInvalidUTF8() {
        let cases: [([UInt8], Int)] = [
            ([0x22, 0xFF, 0x22], 1),  // invalid lead byte
            ([0x22, 0x61, 0xC3, 0x22], 2),  // truncated 2-byte sequence
            ([0x22, 0xC0, 0xAF, 0x22], 1),  // overlong '/'
            ([0x22, 0xE0, 0x80, 0xAF, 0x22], 1),  // overlong 3-byte
            ([0x22, 0xED, 0xA0, 0x80, 0x22], 1),  // encoded surrogate U+D800
            ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1),  // > U+10FFFF
            ([0x22, 0x5C, 0x6E, 0x80, 0x22], 3),  // stray continuation after an escape
            ([0x22, 0xE2, 0x82], 1),  // truncated at end of input
        ]
        for (bytes, offset) in cases {
            #expect(throws: JSONParseError(.invalidUTF8, at: offset), "\(bytes)") { try JSONValue.parse(bytes) }
        }
        // Bytes outside strings are never valid.
        #expect(throws: JSONParseError(.unexpectedCharacter(0xC3), at: 1)) { try JSONValue.parse([0x5B, 0xC3, 0xA9, 0x5D]) }
    }

    @Test func emptyBuffer() {
        #expect(throws: JSONParseError(.unexpectedEndOfInput, at: 0)) {
            try JSONValue.parse(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        #expect(throws: JSONParseError(.unexpectedEndOfInput, at: 0)) { try JSONValue.parse([UInt8]()) }
    }
}

@Suite("JSON parsing with a key cache")
struct JSONKeyCacheTests {
    @Test("A key cache changes nothing in what is parsed: random documents, keys that share a slot, escaped and non-ASCII keys")
    func sameResults() throws {
        var rng = SplitMix64(seed: 7)
        var keys = JSONKeyCache()
        var documents: [String] = []
        for _ in 0..<300 { documents.append(RandomJSON.value(&rng).serializedString()) }
        // Records of one shape (the cache's use), and more distinct keys than the 64 slots.
        for i in 0..<200 { documents.append(#"{"userId":"u-\#(i)","k\#(i % 150)":\#(i),"caf\u00e9":1,"a\"b":2,"":3}"#) }
        for text in documents {
            let bytes = Array(text.utf8)
            let plain = try JSONValue.parse(bytes)
            let cached = try JSONValue.parse(bytes, keys: &keys)
            #expect(cached == plain, "\(text)")
            #expect(cached.serializedString() == plain.serializedString(), "member order of \(text)")
        }
        // A malformed text throws the same error with a cache.
        let bad = Array(#"{"userId":"u-1","qty":}"#.utf8)
        #expect(throws: JSONParseError(.unexpectedCharacter(0x7D), at: 22)) { try JSONValue.parse(bad, keys: &keys) }
        #expect(throws: JSONParseError(.unexpectedCharacter(0x7D), at: 22)) { try JSONValue.parse(bad) }
        // The cache keeps the parser's stacks between parses: a parse that fails deep inside
        // containers leaves nothing behind for the next one.
        let deep = Array(#"{"a":[1,{"b":"x","c":[true,{"d":"#.utf8)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep, keys: &keys) }
        for text in documents.prefix(50) {
            #expect(try JSONValue.parse(Array(text.utf8), keys: &keys) == JSONValue.parse(text), "\(text)")
        }
    }

    @Test("Objects compared with the last one's keys in order parse as without a cache: the same keys, one renamed to a prefix or an extension, reordered, missing, extra, repeated, escaped, nested, and after a failed parse")
    func shapeOfTheLastObject() throws {
        // Each text follows the one before it with the same cache, so each meets the shape
        // the one before left; the expected value is the parse without a cache.
        let texts = [
            #"{"orderId":"o-1","userId":"u-1","price":1.5,"quantity":2}"#,
            #"{"orderId":"o-2","userId":"u-2","price":2.5,"quantity":3}"#,
            #"{"orderId":"o-3","userId":"u-3","price":2.5,"quantity":3}"#,
            #"{"orderId":"o-4","user":"u-4","price":2.5,"quantity":3}"#,
            #"{"orderId":"o-5","userIdx":"u-5","price":2.5,"quantity":3}"#,
            #"{"orderId":"o-6","userId":"u-6","price":2.5,"quantity":3}"#,
            #"{"userId":"u-7","orderId":"o-7","price":2.5,"quantity":3}"#,
            #"{"userId":"u-8","orderId":"o-8","price":2.5}"#,
            #"{"userId":"u-9","orderId":"o-9","price":2.5,"quantity":3,"extra":true}"#,
            #"{"userId":"u-10","orderId":"o-10","price":2.5,"quantity":3,"extra":true,"userId":"last"}"#,
            #"{"userId":"u-11","userId":"u-11b","price":2.5}"#,
            #"{"userId":"u-12","orderId":"o-12","price":2.5,"quantity":3,"extra":true}"#,
            #"{"userId":"u-13","orderId":"o-13","price":2.5,"quantity":3,"extra":true}"#,
            #"{"userId":"u-14","orderId":{"userId":"nested","orderId":1},"price":2.5,"quantity":3,"extra":true}"#,
            #"{"userId" : "u-15" , "orderId":"o-15","price":2.5,"quantity":3,"extra":true}"#,
            #"{"café":1,"userId":"u-16"}"#,
            #"{"café":2,"userId":"u-17"}"#,
            #"{"":1,"userId":"u-18"}"#,
            #"{"":2,"userId":"u-19"}"#,
            #"{"userId":"u-20","orderId"#,
            #"{"userId":"u-21","orderId":"o-21","price":2.5,"quantity":3,"extra":true}"#,
            #"{"userId":"u-22","orderId":"o-22","price":2.5,"quantity":3,"extra":true}"#,
            #"[{"userId":"u-23"},{"userId":"u-23b","orderId":"o"}]"#,
            #"{"userId":"u-24","orderId":"o-24","price":2.5,"quantity":3,"extra":true"#,
        ]
        var keys = JSONKeyCache()
        for text in texts {
            let bytes = Array(text.utf8)
            let cached = Result { () throws(JSONParseError) in try JSONValue.parse(bytes, keys: &keys) }
            let plain = Result { () throws(JSONParseError) in try JSONValue.parse(bytes) }
            switch (cached, plain) {
            case (.success(let c), .success(let p)):
                #expect(c == p, "\(text)")
                #expect(c.serializedString() == p.serializedString(), "member order of \(text)")
            case (.failure(let c), .failure(let p)):
                #expect(c == p, "\(text)")
            default:
                Issue.record("\(text): with the cache \(cached), without \(plain)")
            }
        }
        // A repeated key keeps its first position and its last value on the shape's path too.
        _ = try JSONValue.parse(Array(#"{"a":1,"b":2}"#.utf8), keys: &keys)
        let repeated = try JSONValue.parse(Array(#"{"a":1,"b":2,"a":3}"#.utf8), keys: &keys)
        #expect(repeated.serializedString() == #"{"a":3,"b":2}"#)
    }
}
