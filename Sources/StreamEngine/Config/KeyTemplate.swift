import Foundation

/// A Redis key template such as `user:{userId}:stats`.
///
/// `{name}` is replaced by the field `name` of the record value, `{key}` by the record key;
/// `{{` and `}}` stand for literal braces. Any other use of braces is an error.
public struct KeyTemplate: Sendable, Hashable, CustomStringConvertible {
    /// A piece of a template.
    public enum Part: Sendable, Hashable {
        /// Literal text.
        case literal(String)
        /// The value of a record field.
        case field(String)
        /// The record key.
        case key
    }

    /// The pieces, in order.
    public var parts: [Part]
    /// The template as written.
    public var source: String

    /// Parses a template; throws a message describing the first problem.
    public init(parsing template: String) throws(KeyTemplateError) {
        var parts: [Part] = []
        var literal = ""
        var scalars = Array(template.unicodeScalars)[...]
        var offset = 0
        func flush() {
            if !literal.isEmpty { parts.append(.literal(literal)); literal = "" }
        }
        while let c = scalars.first {
            if c == "{" {
                if scalars.dropFirst().first == "{" {
                    literal += "{"; scalars = scalars.dropFirst(2); offset += 2; continue
                }
                guard let close = scalars.firstIndex(of: "}") else {
                    throw KeyTemplateError(message: "unclosed '{' at offset \(offset) in key template '\(template)'; expected '{field}', '{key}' or '{{' for a literal brace", offset: offset)
                }
                let name = String(String.UnicodeScalarView(scalars[scalars.index(after: scalars.startIndex)..<close]))
                guard !name.isEmpty, name.unicodeScalars.allSatisfy(KeyTemplate.isNameScalar) else {
                    let shown = name.isEmpty ? "{}" : "{\(name)}"
                    throw KeyTemplateError(message: "invalid placeholder '\(shown)' in key template '\(template)'; expected '{field}' with a field name of letters, digits, '_', '.' or '-', or '{key}' for the record key", offset: offset)
                }
                flush()
                parts.append(name == "key" ? .key : .field(name))
                offset += name.unicodeScalars.count + 2
                scalars = scalars[scalars.index(after: close)...]
            } else if c == "}" {
                if scalars.dropFirst().first == "}" {
                    literal += "}"; scalars = scalars.dropFirst(2); offset += 2; continue
                }
                throw KeyTemplateError(message: "unmatched '}' at offset \(offset) in key template '\(template)'; expected '}}' for a literal brace", offset: offset)
            } else {
                literal.unicodeScalars.append(c)
                scalars = scalars.dropFirst(); offset += 1
            }
        }
        flush()
        self.parts = parts
        self.source = template
    }

    private static func isNameScalar(_ s: Unicode.Scalar) -> Bool {
        (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "_" || s == "." || s == "-"
    }

    /// The record fields the template refers to, in order of first use.
    public var referencedFields: [String] {
        var seen = Set<String>()
        return parts.compactMap { if case .field(let f) = $0, seen.insert(f).inserted { return f } else { return nil } }
    }

    /// Whether the template refers to the record key.
    public var usesRecordKey: Bool { parts.contains(.key) }

    /// Renders the key for one record. Returns nil if a referenced field (or the key) is unavailable.
    ///
    /// - Parameters:
    ///   - recordKey: the record key as a string (for `{key}`).
    ///   - fieldLookup: the string form of a top-level field of the record value, or nil if absent.
    public func render(recordKey: String?, fieldLookup: (String) throws -> String?) rethrows -> String? {
        var out = ""
        for part in parts {
            switch part {
            case .literal(let s): out += s
            case .key:
                guard let k = recordKey else { return nil }
                out += k
            case .field(let f):
                guard let v = try fieldLookup(f) else { return nil }
                out += v
            }
        }
        return out
    }

    /// The template as written.
    public var description: String { source }
}

/// Why a key template could not be parsed.
public struct KeyTemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong and what was expected.
    public var message: String
    /// The offset (in Unicode scalars) of the problem in the template.
    public var offset: Int
    /// The message.
    public var description: String { message }
}
