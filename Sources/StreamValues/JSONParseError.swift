/// Why a JSON text was rejected: what went wrong and at which byte offset (0-based) of the
/// input. Its ``description`` is short and meant for dead-letter records, e.g.
/// `unexpected character 'x' at byte 17`.
public struct JSONParseError: Error, CustomStringConvertible, Hashable {
    /// The kinds of malformed input the parser reports.
    public enum Reason: Sendable, Hashable {
        /// A byte that cannot start or continue the construct being parsed.
        case unexpectedCharacter(UInt8)
        /// The input ended in the middle of a value (or was empty / only whitespace).
        case unexpectedEndOfInput
        /// A string with no closing quote; the offset is that of the opening quote.
        case unterminatedString
        /// A backslash followed by a character that is not a JSON escape.
        case invalidEscape
        /// `\u` not followed by four hexadecimal digits.
        case invalidUnicodeEscape
        /// A raw control character (U+0000–U+001F) inside a string; the payload is the byte.
        case controlCharacterInString(UInt8)
        /// A malformed number such as `-`, `01`, `1.` or `1e`.
        case invalidNumber
        /// A number whose magnitude does not fit in a `Double` (e.g. `1e400`).
        case numberOutOfRange
        /// A byte sequence that is not valid UTF-8.
        case invalidUTF8
        /// More than ``JSONValue/maxNestingDepth`` nested arrays/objects.
        case nestingTooDeep
        /// Non-whitespace after the top-level value; the payload is the first such byte.
        case trailingCharacters(UInt8)
    }

    /// What went wrong.
    public let reason: Reason
    /// The 0-based byte offset in the input where the problem was detected.
    public let offset: Int

    /// Creates an error.
    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    /// A short, human-readable explanation, e.g. `unexpected character '}' at byte 5`.
    public var description: String {
        switch reason {
        case .unexpectedCharacter(let b):
            return "unexpected character \(Self.show(b)) at byte \(offset)"
        case .unexpectedEndOfInput:
            return "unexpected end of input at byte \(offset)"
        case .unterminatedString:
            return "unterminated string starting at byte \(offset)"
        case .invalidEscape:
            return "invalid escape sequence at byte \(offset)"
        case .invalidUnicodeEscape:
            return "invalid \\u escape at byte \(offset)"
        case .controlCharacterInString(let b):
            return "unescaped control character \(Self.show(b)) in string at byte \(offset)"
        case .invalidNumber:
            return "invalid number at byte \(offset)"
        case .numberOutOfRange:
            return "number out of range at byte \(offset)"
        case .invalidUTF8:
            return "invalid UTF-8 at byte \(offset)"
        case .nestingTooDeep:
            return "nesting deeper than \(JSONValue.maxNestingDepth) at byte \(offset)"
        case .trailingCharacters(let b):
            return "unexpected trailing character \(Self.show(b)) at byte \(offset)"
        }
    }

    private static func show(_ b: UInt8) -> String {
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        let hex = String(b, radix: 16, uppercase: true)
        return b < 0x10 ? "0x0\(hex)" : "0x\(hex)"
    }
}
