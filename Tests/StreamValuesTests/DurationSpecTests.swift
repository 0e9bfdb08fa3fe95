import Foundation
import Testing

@testable import StreamValues

@Suite("DurationSpec")
struct DurationSpecTests {
    @Test(arguments: [
        ("500ms", Int64(500)), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000), ("24h", 86_400_000),
        ("30d", 2_592_000_000), ("1h30m", 5_400_000), ("1d2h3m4s5ms", 93_784_005), ("0s", 0), ("0ms", 0),
        ("90m", 5_400_000), (" 1h 30m ", 5_400_000), ("2m30s", 150_000), ("1s500ms", 1500),
        ("007s", 7000),
    ])
    func parses(_ text: String, _ expected: Int64) throws {
        #expect(try DurationSpec.parse(text) == expected)
        #expect(try DurationSpec(text).milliseconds == expected)
    }

    @Test(arguments: [
        ("", "empty duration at offset 0"),
        ("   ", "empty duration at offset 3"),
        ("10", "missing unit (ms, s, m, h or d) at offset 2"),
        ("abc", "expected a number at offset 0"),
        ("5y", "unknown unit 'y' at offset 1"),
        ("5M", "unknown unit 'M' at offset 1"),
        ("5 m", "expected a unit (ms, s, m, h or d) at offset 1"),
        ("1.5h", "expected a unit (ms, s, m, h or d) at offset 1"),
        ("-5s", "expected a number at offset 0"),
        ("30m1h", "unit 'h' repeated or out of order (use d, h, m, s, ms) at offset 4"),
        ("1h1h", "unit 'h' repeated or out of order (use d, h, m, s, ms) at offset 3"),
        ("1h30", "missing unit (ms, s, m, h or d) at offset 4"),
        ("1h,30m", "expected a number at offset 2"),
        ("99999999999999999999ms", "number too large at offset 0"),
        ("9999999999999d", "duration too large at offset 0"),
    ])
    func rejects(_ text: String, _ message: String) {
        do {
            let ms = try DurationSpec.parse(text)
            Issue.record("accepted \(text.debugDescription) as \(ms)")
        } catch {
            #expect(error.text == text)
            #expect(error.description == "invalid duration \"\(text)\": \(message) (expected e.g. 500ms, 30s, 5m, 1h30m, 7d)")
        }
    }

    @Test func canonicalDescription() throws {
        #expect(DurationSpec(milliseconds: 5_400_000).description == "1h30m")
        #expect(DurationSpec(milliseconds: 0).description == "0ms")
        #expect(DurationSpec(milliseconds: 93_784_005).description == "1d2h3m4s5ms")
        for text in ["500ms", "30s", "5m", "1h", "30d", "1h30m"] {
            #expect(try DurationSpec(text).description == text)
        }
        #expect(try DurationSpec("90m").description == "1h30m")
        #expect(try DurationSpec("1h").duration == .seconds(3600))
        #expect(try DurationSpec("1s") < DurationSpec("1001ms"))
    }

    @Test func codable() throws {
        struct Config: Codable, Equatable {
            var window: DurationSpec
            var grace: DurationSpec
        }
        let decoded = try JSONDecoder().decode(Config.self, from: Data(#"{"window":"1h30m","grace":2500}"#.utf8))
        #expect(decoded.window.milliseconds == 5_400_000)
        #expect(decoded.grace.milliseconds == 2500)
        let encoded = try JSONEncoder().encode(decoded)
        #expect(try JSONDecoder().decode(Config.self, from: encoded) == decoded)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Config.self, from: Data(#"{"window":"1x","grace":1}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Config.self, from: Data(#"{"window":"1s","grace":-1}"#.utf8))
        }
    }
}
