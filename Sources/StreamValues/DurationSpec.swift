// Human-written durations ("30s", "1h30m") as used in topology configuration.

/// A non-negative duration written as text, such as `500ms`, `30s`, `5m`, `1h`, `24h`, `30d` or
/// `1h30m`, stored as milliseconds.
///
/// Grammar: one or more `<digits><unit>` components with units `d`, `h`, `m`, `s`, `ms`, each
/// used at most once and in that (descending) order; spaces around and between components are
/// ignored. Fractions (`1.5h`), signs, uppercase units and a bare number without unit are
/// rejected.
///
/// Decodes from a string (`"30s"`) or from an integer number of milliseconds, so it can be used
/// directly in `Decodable` configuration; encodes as its canonical string.
public struct DurationSpec: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The duration in milliseconds (never negative).
    public let milliseconds: Int64

    /// Why a duration text was rejected.
    public struct ParseError: Error, CustomStringConvertible, Hashable {
        /// The rejected text.
        public let text: String
        /// The 0-based UTF-8 offset in `text` where the problem was found.
        public let offset: Int
        /// A short explanation, e.g. `unknown unit 'y'`.
        public let reason: String

        /// A message such as `invalid duration "5y": unknown unit 'y' at offset 1`.
        public var description: String {
            "invalid duration \"\(text)\": \(reason) at offset \(offset) (expected e.g. 500ms, 30s, 5m, 1h30m, 7d)"
        }
    }

    /// Creates a duration of `milliseconds` (must not be negative).
    public init(milliseconds: Int64) {
        precondition(milliseconds >= 0, "DurationSpec cannot be negative")
        self.milliseconds = milliseconds
    }

    /// Parses a duration text such as `1h30m`.
    /// - Throws: ``ParseError`` describing what is wrong and where.
    public init(_ text: some StringProtocol) throws(ParseError) {
        self.milliseconds = try Self.parse(text)
    }

    /// Parses a duration text such as `1h30m` into milliseconds.
    /// - Throws: ``ParseError`` describing what is wrong and where.
    public static func parse(_ text: some StringProtocol) throws(ParseError) -> Int64 {
        let bytes = Array(text.utf8)
        func fail(_ reason: String, _ offset: Int) -> ParseError {
            ParseError(text: String(text), offset: offset, reason: reason)
        }
        var i = 0
        let n = bytes.count
        func skipSpaces() { while i < n && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 } }

        skipSpaces()
        if i == n { throw fail("empty duration", i) }
        var total: Int64 = 0
        var previousRank = Int.max  // units must strictly descend
        while i < n {
            let numberStart = i
            var value: Int64 = 0
            while i < n, bytes[i] &- 0x30 < 10 {
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (next, o2) = times10.addingReportingOverflow(Int64(bytes[i] &- 0x30))
                if o1 || o2 { throw fail("number too large", numberStart) }
                value = next
                i += 1
            }
            if i == numberStart { throw fail("expected a number", i) }

            let unitStart = i
            while i < n, (bytes[i] >= 0x61 && bytes[i] <= 0x7A) || (bytes[i] >= 0x41 && bytes[i] <= 0x5A) {
                i += 1
            }
            let unit = String(decoding: bytes[unitStart..<i], as: UTF8.self)
            if unit.isEmpty {
                throw fail(i == n ? "missing unit (ms, s, m, h or d)" : "expected a unit (ms, s, m, h or d)", i)
            }
            let (scale, rank): (Int64, Int)
            switch unit {
            case "d": (scale, rank) = (86_400_000, 4)
            case "h": (scale, rank) = (3_600_000, 3)
            case "m": (scale, rank) = (60_000, 2)
            case "s": (scale, rank) = (1000, 1)
            case "ms": (scale, rank) = (1, 0)
            default: throw fail("unknown unit '\(unit)'", unitStart)
            }
            if rank >= previousRank { throw fail("unit '\(unit)' repeated or out of order (use d, h, m, s, ms)", unitStart) }
            previousRank = rank

            let (part, o1) = value.multipliedReportingOverflow(by: scale)
            let (sum, o2) = total.addingReportingOverflow(part)
            if o1 || o2 { throw fail("duration too large", numberStart) }
            total = sum
            skipSpaces()
        }
        return total
    }

    /// The canonical text, largest units first, zero components omitted: `1h30m`, `500ms`,
    /// `1d2h3m4s5ms`; zero is `0ms`.
    public var description: String {
        if milliseconds == 0 { return "0ms" }
        var rest = milliseconds
        var s = ""
        for (scale, unit) in [(Int64(86_400_000), "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms")] {
            let q = rest / scale
            if q > 0 {
                s += "\(q)\(unit)"
                rest -= q * scale
            }
        }
        return s
    }

    /// The same length as a standard-library `Duration`.
    public var duration: Duration { .milliseconds(milliseconds) }

    /// Orders by length.
    public static func < (lhs: DurationSpec, rhs: DurationSpec) -> Bool {
        lhs.milliseconds < rhs.milliseconds
    }

    /// Decodes from a duration string (`"30s"`) or a non-negative integer of milliseconds.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let millis = try? container.decode(Int64.self) {
            guard millis >= 0 else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "duration must not be negative: \(millis)")
            }
            self.milliseconds = millis
            return
        }
        let text = try container.decode(String.self)
        do {
            self.milliseconds = try Self.parse(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes as the canonical string (see ``description``).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
