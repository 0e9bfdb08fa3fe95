import StreamEngine

// Typed access to record fields for the shop operators: a missing field or a
// value of the wrong type is a `RecordError`, so the record goes to the
// dead-letter topic with a reason a person can act on.

extension StreamRecord {
    /// A string field that must be present and non-empty.
    func requiredString(_ field: String) throws(RecordError) -> String {
        guard let v = self.field(field), !v.isNull else { throw RecordError(.missingField, "field '\(field)' is missing") }
        guard let s = v.stringValue else {
            throw RecordError(.wrongType, "field '\(field)' must be a string, got \(v.serializedString())")
        }
        guard !s.isEmpty else { throw RecordError(.missingField, "field '\(field)' is empty") }
        return s
    }

    /// A string field that may be absent or null (an empty string counts as absent).
    func optionalString(_ field: String) throws(RecordError) -> String? {
        guard let v = self.field(field), !v.isNull else { return nil }
        guard let s = v.stringValue else {
            throw RecordError(.wrongType, "field '\(field)' must be a string or null, got \(v.serializedString())")
        }
        return s.isEmpty ? nil : s
    }

    /// A finite, non-negative number.
    func nonNegativeNumber(_ field: String) throws(RecordError) -> Double {
        guard let v = self.field(field), !v.isNull else { throw RecordError(.missingField, "field '\(field)' is missing") }
        guard let d = v.doubleValue, d.isFinite, d >= 0 else {
            throw RecordError(.wrongType, "field '\(field)' must be a non-negative number, got \(v.serializedString())")
        }
        return d
    }

    /// A whole number of at least 1 (a quantity).
    func positiveInteger(_ field: String) throws(RecordError) -> Int64 {
        guard let v = self.field(field), !v.isNull else { throw RecordError(.missingField, "field '\(field)' is missing") }
        guard let i = v.intValue, i >= 1 else {
            throw RecordError(.wrongType, "field '\(field)' must be a whole number of at least 1, got \(v.serializedString())")
        }
        return i
    }

    // Through a key that remembers the field's position (a step's hot path): the common case
    // read without a `JSONValue`; anything else goes to the by-name form, which names the reason.

    /// ``requiredString(_:)-(String)`` through a ``FieldKey``.
    func requiredString(_ key: FieldKey) throws(RecordError) -> String {
        if let s = string(key), !s.isEmpty { return s }
        return try requiredString(key.name)
    }

    /// ``nonNegativeNumber(_:)-(String)`` through a ``FieldKey``.
    func nonNegativeNumber(_ key: FieldKey) throws(RecordError) -> Double {
        if let d = number(key), d.isFinite, d >= 0 { return d }
        return try nonNegativeNumber(key.name)
    }

    /// ``positiveInteger(_:)-(String)`` through a ``FieldKey``.
    func positiveInteger(_ key: FieldKey) throws(RecordError) -> Int64 {
        if let d = number(key), let i = Int64(exactly: d), i >= 1 { return i }
        return try positiveInteger(key.name)
    }
}

/// Money in whole cents, so that sums are exact.
public enum Cents {
    /// Largest amount of one purchase (10^13 cents): sums of many stay far from Int64's limit.
    public static let maxPerPurchase: Double = 1e13

    /// `price × quantity` rounded to the cent; an amount beyond ``maxPerPurchase``
    /// is a bad record (it would overflow the sums), not a crash.
    public static func of(price: Double, quantity: Int64) throws(RecordError) -> Int64 {
        let cents = (price * Double(quantity) * 100).rounded()
        guard cents.isFinite, abs(cents) <= maxPerPurchase else {
            throw RecordError(.wrongType, "price × quantity (\(price) × \(quantity)) is out of range: at most \(Int64(maxPerPurchase / 100)) per purchase")
        }
        return Int64(cents)
    }

    /// `12345` → `"123.45"`.
    public static func decimalString(_ cents: Int64) -> String {
        let sign = cents < 0 ? "-" : ""
        let m = cents.magnitude
        let fraction = m % 100
        return "\(sign)\(m / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    /// `12345` → `123.45` as a number (for sorted-set scores).
    public static func amount(_ cents: Int64) -> Double { Double(cents) / 100 }
}

extension JSONObject {
    /// An optional duration parameter with a default, in milliseconds.
    func duration(_ name: String, default value: String, for op: String) throws -> Int64 {
        do {
            if let d = try durationMillis(name) { return d }
            return try DurationSpec.parse(value)
        } catch {
            throw OperatorConfigError("\(op): \(error)")
        }
    }

    /// An optional string parameter with a default.
    func string(_ name: String, default value: String) -> String {
        self[name]?.stringValue ?? value
    }

    /// An optional integer parameter with a default that must be at least 1.
    func positiveInt(_ name: String, default value: Int, for op: String) throws -> Int {
        let n = int(name, default: value)
        guard n >= 1 else { throw OperatorConfigError("\(op): parameter '\(name)' must be at least 1, got \(n)") }
        return n
    }

    /// A key template parameter such as `recent:guest:{guestId}`.
    func keyTemplate(_ name: String, default value: String, for op: String) throws -> KeyTemplate {
        let text = string(name, default: value)
        do { return try KeyTemplate(parsing: text) } catch { throw OperatorConfigError("\(op): parameter '\(name)': \(error)") }
    }
}

extension JSONValue {
    /// An epoch-milliseconds number.
    static func millis(_ t: Int64) -> JSONValue { .number(Double(t)) }
}
