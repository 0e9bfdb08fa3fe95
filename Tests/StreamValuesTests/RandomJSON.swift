@testable import StreamValues

/// Random JSON trees for round-trip and fuzz tests: every kind of value, awkward strings
/// (quotes, backslashes, control characters, non-ASCII, U+2028) and numbers of every magnitude.
enum RandomJSON {
    static func value(_ rng: inout SplitMix64, depth: Int = 0) -> JSONValue {
        let pick = depth > 4 ? rng.next() % 4 : rng.next() % 6
        switch pick {
        case 0: return .null
        case 1: return .bool(rng.next() % 2 == 0)
        case 2:
            switch rng.next() % 3 {
            case 0: return .number(Double(Int64(bitPattern: rng.next()) >> 20))
            case 1: return .number(Double(Int64(bitPattern: rng.next()) % 100_000) / 100)
            default:
                let d = Double(bitPattern: rng.next())
                return .number(d.isFinite ? d : 1)
            }
        case 3: return .string(string(&rng))
        case 4: return .array((0..<Int(rng.next() % 5)).map { _ in value(&rng, depth: depth + 1) })
        default:
            var o = JSONObject()
            for _ in 0..<Int(rng.next() % 6) { o[string(&rng)] = value(&rng, depth: depth + 1) }
            return .object(o)
        }
    }

    static func string(_ rng: inout SplitMix64) -> String {
        let alphabet: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\u{0}", "\u{1f}", "é", "中", "😀", "\u{2028}", "\u{FFFD}"]
        var s = String.UnicodeScalarView()
        for _ in 0..<Int(rng.next() % 10) { s.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
        return String(s)
    }
}
