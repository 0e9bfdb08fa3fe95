// The JSON parser's numbers: the grammar, a fast exact path and the correctly rounded fallback.

/// Exact powers of ten representable as `Double` (10^0 ... 10^22).
private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

extension JSONParser {
    // MARK: Numbers

    @inline(__always)
    func isDigit(at i: Int) -> Bool {
        i < count && base[i] &- ASCII.zero < 10
    }

    /// Parses a number at `pos` (which holds `-` or a digit).
    mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = pos
        let negative = base[pos] == ASCII.minus
        if negative { pos += 1 }

        var mantissa: UInt64 = 0
        var significantDigits = 0
        var exponent = 0  // decimal exponent applied to `mantissa`

        guard pos < count else { throw JSONParseError(.invalidNumber, at: pos) }
        if base[pos] == ASCII.zero {
            pos += 1
            if isDigit(at: pos) { throw JSONParseError(.invalidNumber, at: start) }  // leading zero
        } else if isDigit(at: pos) {
            repeat {
                let d = UInt64(base[pos] &- ASCII.zero)
                if significantDigits < 19 {
                    mantissa = mantissa &* 10 &+ d
                } else {
                    exponent += 1  // digit dropped; precise value comes from the slow path
                }
                significantDigits += 1
                pos += 1
            } while isDigit(at: pos)
        } else {
            throw JSONParseError(.invalidNumber, at: pos)
        }

        if pos < count && base[pos] == ASCII.dot {
            pos += 1
            guard isDigit(at: pos) else { throw JSONParseError(.invalidNumber, at: pos) }
            repeat {
                let d = UInt64(base[pos] &- ASCII.zero)
                if mantissa == 0 && d == 0 {
                    exponent -= 1  // leading zeros of the fraction are not significant
                } else {
                    if significantDigits < 19 {
                        mantissa = mantissa &* 10 &+ d
                        exponent -= 1
                    }
                    significantDigits += 1
                }
                pos += 1
            } while isDigit(at: pos)
        }

        if pos < count && (base[pos] == ASCII.lowerE || base[pos] == ASCII.upperE) {
            pos += 1
            var expNegative = false
            if pos < count && (base[pos] == ASCII.minus || base[pos] == ASCII.plus) {
                expNegative = base[pos] == ASCII.minus
                pos += 1
            }
            guard isDigit(at: pos) else { throw JSONParseError(.invalidNumber, at: pos) }
            var e = 0
            repeat {
                if e < 100_000 { e = e * 10 + Int(base[pos] &- ASCII.zero) }
                pos += 1
            } while isDigit(at: pos)
            exponent += expNegative ? -e : e
        }

        // Clinger's fast path: mantissa and 10^|exponent| are exact doubles, so one correctly
        // rounded multiplication or division gives the correctly rounded result.
        if significantDigits <= 19 && mantissa <= (1 << 53) && exponent >= -22 && exponent <= 22 {
            var value = Double(mantissa)
            if exponent < 0 {
                value /= exactPowersOfTen[-exponent]
            } else {
                value *= exactPowersOfTen[exponent]
            }
            return negative ? -value : value
        }
        if mantissa == 0 && significantDigits == 0 { return negative ? -0.0 : 0.0 }

        // Slow path: the standard library's correctly rounded conversion.
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw JSONParseError(.numberOutOfRange, at: start)
        }
        return value
    }
}
