// Event-time helpers on epoch milliseconds, without DateFormatter.

/// Conversions between ISO-8601 / RFC 3339 timestamps and epoch milliseconds (`Int64`, UTC,
/// negative before 1970), implemented with proleptic-Gregorian day arithmetic.
public enum EventTime {
    /// Milliseconds in one day.
    public static let millisecondsPerDay: Int64 = 86_400_000

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]` into epoch milliseconds.
    ///
    /// - The date/time separator may be `T`, `t` or a space.
    /// - The fraction has 1–9 digits and is truncated (not rounded) to milliseconds.
    /// - The zone is `Z`/`z`, `±HH:MM` or `±HHMM`; without a zone the time is taken as UTC.
    /// - Fields are range-checked: month 1–12, day within the month (leap years included),
    ///   hour 0–23, minute 0–59, second 0–59 (leap second 60 is rejected), offset up to ±23:59.
    ///
    /// - Returns: the instant in milliseconds since 1970-01-01T00:00:00Z, or `nil` when the text
    ///   is not such a timestamp.
    public static func parseISO8601(_ s: String) -> Int64? {
        // A `String` overload: the generic one below is not specialised across modules, and
        // its protocol calls cost several times the parse itself.
        var s = s
        return s.withUTF8 { parseISO8601(bytes: $0) }
    }

    /// ``parseISO8601(_:)-(String)`` for any string type (a `Substring`, for example).
    public static func parseISO8601(_ s: some StringProtocol) -> Int64? {
        if let result = s.utf8.withContiguousStorageIfAvailable({ parseISO8601(bytes: $0) }) {
            return result
        }
        return Array(s.utf8).withUnsafeBufferPointer { parseISO8601(bytes: $0) }
    }

    /// Parses an ISO-8601 timestamp from UTF-8 bytes. See ``parseISO8601(_:)``.
    public static func parseISO8601(bytes p: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard p.count >= 19, let head = parseHead(p), let tail = parseTail(p) else { return nil }
        return head + tail
    }

    /// The first 16 bytes of the last timestamp a reader parsed (`YYYY-MM-DDTHH:MM`) and the
    /// instant they name: the timestamps of one stream mostly share them, so
    /// ``parseISO8601(bytes:prefix:)`` compares two words instead of reading the date again.
    public struct ISO8601Prefix: Sendable {
        var low: UInt64 = 0
        var high: UInt64 = 0
        var millis: Int64 = 0
        var valid = false

        public init() {}

        init(low: UInt64, high: UInt64, millis: Int64, valid: Bool) {
            (self.low, self.high, self.millis, self.valid) = (low, high, millis, valid)
        }
    }

    /// ``parseISO8601(bytes:)``, taking the date, hour and minute from `prefix` when the text
    /// starts with the same 16 bytes as the last one parsed with it (and leaving this one's there).
    public static func parseISO8601(bytes p: UnsafeBufferPointer<UInt8>, prefix: inout ISO8601Prefix) -> Int64? {
        guard p.count >= 19, let base = p.baseAddress else { return nil }
        let raw = UnsafeRawPointer(base)
        let low = raw.loadUnaligned(as: UInt64.self), high = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let head: Int64
        if prefix.valid && prefix.low == low && prefix.high == high {
            head = prefix.millis
        } else {
            guard let h = parseHead(p) else { return nil }
            prefix = ISO8601Prefix(low: low, high: high, millis: h, valid: true)
            head = h
        }
        guard let tail = parseTail(p) else { return nil }
        return head + tail
    }

    /// The decimal digit at `i`, `nil` if it is another byte.
    @inline(__always)
    static func digit(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> Int64? {
        let d = p[i] &- 0x30
        return d < 10 ? Int64(d) : nil
    }

    /// The two-digit number at `i`, `nil` unless both bytes are digits.
    @inline(__always)
    static func twoDigits(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> Int64? {
        guard let a = digit(p, i), let b = digit(p, i + 1) else { return nil }
        return a * 10 + b
    }

    /// `YYYY-MM-DDTHH:MM` (the first 16 of at least 19 bytes) in epoch milliseconds.
    static func parseHead(_ p: UnsafeBufferPointer<UInt8>) -> Int64? {
        @inline(__always) func two(_ i: Int) -> Int64? { Self.twoDigits(p, i) }

        guard let y1 = two(0), let y2 = two(2), p[4] == 0x2D, let month = two(5), p[7] == 0x2D,
            let day = two(8)
        else { return nil }
        let sep = p[10]
        guard sep == 0x54 || sep == 0x74 || sep == 0x20 else { return nil }
        guard let hour = two(11), p[13] == 0x3A, let minute = two(14) else { return nil }
        let year = y1 * 100 + y2
        guard month >= 1 && month <= 12, day >= 1, day <= daysInMonth(year: year, month: month),
            hour <= 23, minute <= 59
        else { return nil }
        return daysFromCivil(year: year, month: month, day: day) * millisecondsPerDay + (hour * 3600 + minute * 60) * 1000
    }

    /// `:SS[.fraction][Z|±HH:MM]` from byte 16 to the end, in milliseconds (the zone's offset
    /// subtracted).
    static func parseTail(_ p: UnsafeBufferPointer<UInt8>) -> Int64? {
        let n = p.count
        @inline(__always) func digit(_ i: Int) -> Int64? { Self.digit(p, i) }
        @inline(__always) func two(_ i: Int) -> Int64? { Self.twoDigits(p, i) }
        guard p[16] == 0x3A, let second = two(17), second <= 59 else { return nil }

        var i = 19
        var millis: Int64 = 0
        if i < n && p[i] == 0x2E {  // .
            i += 1
            var digits = 0
            while i < n, let d = digit(i) {
                if digits < 3 { millis = millis * 10 + d }
                digits += 1
                i += 1
            }
            guard digits >= 1 && digits <= 9 else { return nil }
            var scale = digits
            while scale < 3 {
                millis *= 10
                scale += 1
            }
        }

        var offsetMinutes: Int64 = 0
        if i < n {
            let z = p[i]
            if z == 0x5A || z == 0x7A {  // Z z
                i += 1
            } else if z == 0x2B || z == 0x2D {  // + -
                guard i + 3 <= n, let oh = two(i + 1) else { return nil }
                i += 3
                var om: Int64 = 0
                if i < n && p[i] == 0x3A {
                    guard i + 3 <= n, let m = two(i + 1) else { return nil }
                    om = m
                    i += 3
                } else if i + 2 <= n, let m = two(i) {
                    om = m
                    i += 2
                } else {
                    return nil
                }
                guard oh <= 23 && om <= 59 else { return nil }
                offsetMinutes = (oh * 60 + om) * (z == 0x2D ? -1 : 1)
            } else {
                return nil
            }
        }
        guard i == n else { return nil }
        return (second - offsetMinutes * 60) * 1000 + millis
    }

    /// Formats epoch milliseconds as a UTC RFC 3339 timestamp: `2024-12-14T12:00:00Z` for whole
    /// seconds, else `2024-12-14T12:00:00.123Z`.
    ///
    /// Years 0–9999 print as four digits; instants outside that range print the year with a
    /// leading `-` and/or more digits (not RFC 3339, but unambiguous).
    public static func formatISO8601(_ millis: Int64) -> String {
        let (days, msOfDay) = floorDivMod(millis, millisecondsPerDay)
        let (year, month, day) = civilFromDays(days)
        let hour = msOfDay / 3_600_000
        let minute = msOfDay / 60_000 % 60
        let second = msOfDay / 1000 % 60
        let ms = msOfDay % 1000

        if year < 0 || year > 9999 {
            var s = year < 0 ? "-" : ""
            let y = String(year.magnitude)
            s += String(repeating: "0", count: max(0, 4 - y.count)) + y
            return s + formatTail(month, day, hour, minute, second, ms)
        }
        return String(unsafeUninitializedCapacity: 24) { out in
            var i = 0
            @inline(__always) func put(_ b: UInt8) {
                out[i] = b
                i += 1
            }
            @inline(__always) func put2(_ v: Int64) {
                put(0x30 &+ UInt8(v / 10))
                put(0x30 &+ UInt8(v % 10))
            }
            put2(year / 100)
            put2(year % 100)
            put(0x2D)
            put2(month)
            put(0x2D)
            put2(day)
            put(0x54)
            put2(hour)
            put(0x3A)
            put2(minute)
            put(0x3A)
            put2(second)
            if ms != 0 {
                put(0x2E)
                put(0x30 &+ UInt8(ms / 100))
                put2(ms % 100)
            }
            put(0x5A)
            return i
        }
    }

    private static func formatTail(
        _ month: Int64, _ day: Int64, _ hour: Int64, _ minute: Int64, _ second: Int64, _ ms: Int64
    ) -> String {
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var s = "-\(two(month))-\(two(day))T\(two(hour)):\(two(minute)):\(two(second))"
        if ms != 0 { s += ms < 10 ? ".00\(ms)" : ms < 100 ? ".0\(ms)" : ".\(ms)" }
        return s + "Z"
    }

    /// Whether `year` is a leap year in the proleptic Gregorian calendar.
    public static func isLeapYear(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// The number of days in `month` (1–12) of `year`.
    public static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic-Gregorian civil date (month 1–12, day 1–31).
    public static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let shiftedMonth = month > 2 ? month - 3 : month + 9  // March = 0
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic-Gregorian civil date of a day count since 1970-01-01.
    public static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    @inline(__always)
    private static func floorDivMod(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        var q = a / b
        var r = a % b
        if r < 0 {
            q -= 1
            r += b
        }
        return (q, r)
    }
}
