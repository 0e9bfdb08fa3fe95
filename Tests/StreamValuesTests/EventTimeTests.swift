import Testing

@testable import StreamValues

@Suite("EventTime")
struct EventTimeTests {
    @Test(arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)),
        ("2024-12-14T12:00:00Z", 1_734_177_600_000),
        ("2024-12-14T12:00:00.123Z", 1_734_177_600_123),
        ("2024-12-14T12:00:00.1Z", 1_734_177_600_100),
        ("2024-12-14T12:00:00.12Z", 1_734_177_600_120),
        ("2024-12-14T12:00:00.123456789Z", 1_734_177_600_123),  // truncated, not rounded
        ("2024-12-14T12:00:00.999999Z", 1_734_177_600_999),
        ("2024-12-14T12:00:00+09:00", 1_734_145_200_000),  // == 03:00Z
        ("2024-12-14T12:00:00-05:30", 1_734_197_400_000),  // == 17:30Z
        ("2024-12-14T12:00:00+0900", 1_734_145_200_000),
        ("2024-12-14T12:00:00.5+01:00", 1_734_174_000_500),
        ("2024-12-14T12:00:00", 1_734_177_600_000),  // no zone → UTC
        ("2024-12-14t12:00:00z", 1_734_177_600_000),
        ("2024-12-14 12:00:00Z", 1_734_177_600_000),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
        ("2000-02-29T23:59:59.999Z", 951_868_799_999),
        ("1969-12-31T23:59:59.999Z", -1),
        ("1969-12-31T23:59:59Z", -1000),
        ("1900-01-01T00:00:00Z", -2_208_988_800_000),
        ("0001-01-01T00:00:00Z", -62_135_596_800_000),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
        ("1970-01-01T00:00:00+00:00", 0),
        ("1970-01-01T00:00:00-00:00", 0),
    ])
    func parses(_ text: String, _ expected: Int64) {
        #expect(EventTime.parseISO8601(text) == expected)
        #expect(EventTime.parseISO8601(Substring("[\(text)]").dropFirst().dropLast()) == expected)
    }

    @Test(arguments: [
        "", "2024-12-14", "2024-12-14T12:00", "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z",
        "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "2024-01-00T00:00:00Z",
        "2024-01-32T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:60Z",
        "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00.1234567890Z", "2024-01-01T00:00:00ZZ",
        "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00+09:60", "2024-01-01T00:00:00+9:00",
        "2024-01-01T00:00:00+09", "2024-01-01T00:00:00+09:0", "2024-01-01X00:00:00Z",
        "2024/01/01T00:00:00Z", "24-01-01T00:00:00Z", "2024-1-01T00:00:00Z", "2024-01-01T00:00:00 Z",
        " 2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z ", "２０２４-01-01T00:00:00Z", "abcd-ef-ghTij:kl:mnZ",
    ])
    func rejects(_ text: String) {
        #expect(EventTime.parseISO8601(text) == nil)
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00Z"),
        (1_734_177_600_000, "2024-12-14T12:00:00Z"),
        (1_734_177_600_123, "2024-12-14T12:00:00.123Z"),
        (1_734_177_600_005, "2024-12-14T12:00:00.005Z"),
        (1_734_177_600_050, "2024-12-14T12:00:00.050Z"),
        (1_709_164_800_000, "2024-02-29T00:00:00Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-1000, "1969-12-31T23:59:59Z"),
        (-86_400_000, "1969-12-31T00:00:00Z"),
        (-2_208_988_800_000, "1900-01-01T00:00:00Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        (253_402_300_800_000, "10000-01-01T00:00:00Z"),
        (-62_135_596_800_001, "0000-12-31T23:59:59.999Z"),
        (-62_167_219_200_001, "-0001-12-31T23:59:59.999Z"),
    ])
    func formats(_ millis: Int64, _ expected: String) {
        #expect(EventTime.formatISO8601(millis) == expected)
    }

    @Test("a reader's prefix cache gives what a parse without it gives, for every text after every other (valid, invalid, same date and minute or not)")
    func prefixCacheAgreesWithTheFullParse() {
        let texts = [
            "2024-12-14T12:00:00Z", "2024-12-14T12:00:59.999Z", "2024-12-14T12:00:60Z", "2024-12-14T12:00:07+09:00",
            "2024-12-14T12:00:07.5-05:30", "2024-12-14T12:00", "2024-12-14T12:00:00ZZ", "2024-12-14T12:01:00Z",
            "2024-12-14 12:00:00Z", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2024-02-29T00:00:01.1Z",
            "1969-12-31T23:59:59.999Z", "2024-12-14T12:00:00.1234567890Z", "2024-12-14T12:00:0", "", "abcd-ef-ghTij:kl:mnZ",
        ]
        for first in texts {
            for second in texts {
                var prefix = EventTime.ISO8601Prefix()
                for text in [first, second, first, second] {
                    let cached = Array(text.utf8).withUnsafeBufferPointer { EventTime.parseISO8601(bytes: $0, prefix: &prefix) }
                    #expect(cached == EventTime.parseISO8601(text), "\(text) after \(first) / \(second)")
                }
            }
        }
    }

    @Test func extremesDoNotTrap() {
        #expect(EventTime.formatISO8601(.max).hasSuffix(".807Z"))
        #expect(EventTime.formatISO8601(.min).hasPrefix("-"))
    }

    /// Every day from 1600 to 2500 (and random instants) round-trips format → parse, and the
    /// day arithmetic agrees with a naive day-by-day calendar walk.
    @Test func roundTripsAndAgreesWithNaiveCalendar() {
        var days = EventTime.daysFromCivil(year: 1600, month: 1, day: 1)
        for year in Int64(1600)...2500 {
            for month in Int64(1)...12 {
                for day in Int64(1)...EventTime.daysInMonth(year: year, month: month) {
                    #expect(EventTime.daysFromCivil(year: year, month: month, day: day) == days)
                    let civil = EventTime.civilFromDays(days)
                    #expect(civil.year == year && civil.month == month && civil.day == day)
                    days += 1
                }
            }
        }
        var rng = SplitMix64(seed: 3)
        for _ in 0..<20_000 {
            let millis = Int64(bitPattern: rng.next() % 506_000_000_000_000) - 253_000_000_000_000
            guard millis >= -62_135_596_800_000 else { continue }  // years ≥ 1
            let text = EventTime.formatISO8601(millis)
            #expect(EventTime.parseISO8601(text) == millis, "\(text)")
        }
    }

    @Test func leapYears() {
        #expect(EventTime.isLeapYear(2024))
        #expect(EventTime.isLeapYear(2000))
        #expect(!EventTime.isLeapYear(1900))
        #expect(!EventTime.isLeapYear(2023))
    }
}
