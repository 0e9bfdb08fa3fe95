import Foundation
import Yams

/// A YAML node with its position, after `${VAR}` substitution and scalar typing.
struct ConfigNode {
    /// A scalar: its text (after substitution) and its typed value.
    struct Scalar {
        var text: String
        var value: JSONValue
        /// True for integer literals (so `10` and `10.0` can be told apart).
        var isIntegerLiteral: Bool
    }

    enum Kind {
        case scalar(Scalar)
        case mapping([(key: ConfigNode, value: ConfigNode)])
        case sequence([ConfigNode])
    }

    var kind: Kind
    var location: SourceLocation

    var scalar: Scalar? {
        if case .scalar(let s) = kind { return s }
        return nil
    }

    var isNull: Bool {
        if case .scalar(let s) = kind, case .null = s.value { return true }
        return false
    }

    /// A short description for error messages: `'fast'`, `a mapping`, `a list`, `null`.
    var shortDescription: String {
        switch kind {
        case .scalar(let s):
            if case .null = s.value { return "null" }
            let text = s.text.count > 60 ? String(s.text.prefix(57)) + "..." : s.text
            return "'\(text)'"
        case .mapping: return "a map"
        case .sequence: return "a list"
        }
    }

    /// The free-form value of this node.
    var value: JSONValue {
        switch kind {
        case .scalar(let s): return s.value
        case .sequence(let items): return .array(items.map(\.value))
        case .mapping(let pairs):
            var object = JSONObject()
            for (k, v) in pairs { object[k.scalar?.text ?? k.shortDescription] = v.value }
            return .object(object)
        }
    }
}

/// Converts a composed Yams tree into ``ConfigNode``s, substituting environment variables
/// in scalar values (not keys) and typing scalars with the YAML 1.2 core schema.
struct ConfigNodeBuilder {
    var file: String
    var environment: [String: String]
    var diagnostics: [ConfigDiagnostic] = []

    init(file: String, environment: [String: String]) {
        self.file = file
        self.environment = environment
    }

    func location(_ mark: Mark?) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0)
    }

    mutating func build(_ node: Node, isKey: Bool = false) -> ConfigNode {
        let loc = location(node.mark)
        switch node {
        case .scalar(let scalar):
            var text = scalar.string
            if !isKey, text.contains("$") {
                text = substitute(text, at: loc)
            }
            let plain = scalar.style == .plain || scalar.style == .any
            let typed = Self.typedScalar(text: text, plain: plain, tag: scalar.tag.rawValue)
            return ConfigNode(kind: .scalar(typed), location: loc)
        case .mapping(let mapping):
            var pairs: [(key: ConfigNode, value: ConfigNode)] = []
            for (k, v) in mapping {
                pairs.append((build(k, isKey: true), build(v)))
            }
            return ConfigNode(kind: .mapping(pairs), location: loc)
        case .sequence(let sequence):
            var items: [ConfigNode] = []
            for item in sequence { items.append(build(item)) }
            return ConfigNode(kind: .sequence(items), location: loc)
        case .alias:
            diagnostics.append(ConfigDiagnostic(at: loc, message: "unresolved YAML alias; expected an alias to an anchor defined earlier in the file"))
            return ConfigNode(kind: .scalar(.init(text: "", value: .null, isIntegerLiteral: false)), location: loc)
        }
    }

    /// Replaces `${VAR}` and `${VAR:-default}`; `$${` stands for a literal `${`.
    /// `${VAR:-default}` uses the default when `VAR` is unset or empty.
    mutating func substitute(_ text: String, at loc: SourceLocation) -> String {
        let s = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < s.count {
            if s[i] == "$", i + 2 < s.count, s[i + 1] == "$", s[i + 2] == "{" {
                out.append("$"); out.append("{"); i += 3
                continue
            }
            guard s[i] == "$", i + 1 < s.count, s[i + 1] == "{" else {
                out.append(s[i]); i += 1
                continue
            }
            guard let close = s[(i + 2)...].firstIndex(of: "}") else {
                diagnostics.append(ConfigDiagnostic(at: loc, message: "unterminated variable reference '\(String(String.UnicodeScalarView(s[i...])))'; expected '${NAME}' or '${NAME:-default}'"))
                return text
            }
            let body = String(String.UnicodeScalarView(s[(i + 2)..<close]))
            let name: String
            let fallback: String?
            if let range = body.range(of: ":-") {
                name = String(body[..<range.lowerBound])
                fallback = String(body[range.upperBound...])
            } else {
                name = body
                fallback = nil
            }
            guard Self.isVariableName(name) else {
                diagnostics.append(ConfigDiagnostic(at: loc, message: "invalid variable reference '${\(body)}'; expected '${NAME}' or '${NAME:-default}' with NAME made of letters, digits and '_'"))
                return text
            }
            let value = environment[name]
            if let fallback, value == nil || value == "" {
                out.append(contentsOf: fallback.unicodeScalars)
            } else if let value {
                out.append(contentsOf: value.unicodeScalars)
            } else {
                diagnostics.append(ConfigDiagnostic(at: loc, message: "environment variable '\(name)' is not set; expected it to be set, or a default as in '${\(name):-default}'"))
                return text
            }
            i = close + 1
        }
        return String(out)
    }

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !(first >= "0" && first <= "9") else { return false }
        return name.unicodeScalars.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" }
    }

    /// Types a scalar with the YAML 1.2 core schema (plain scalars only; quoted ones are strings).
    /// Non-finite numbers (`.inf`, `.nan`, overflowing literals) stay strings, as JSON has none.
    static func typedScalar(text: String, plain: Bool, tag: String) -> ConfigNode.Scalar {
        let core = "tag:yaml.org,2002:"
        let string = ConfigNode.Scalar(text: text, value: .string(text), isIntegerLiteral: false)
        switch tag {
        case core + "str", "!": return string
        case core + "null": return .init(text: text, value: .null, isIntegerLiteral: false)
        case core + "bool", core + "int", core + "float": break
        case "": if !plain { return string }
        default: if !plain { return string }
        }
        switch text {
        case "", "~", "null", "Null", "NULL":
            return .init(text: text, value: .null, isIntegerLiteral: false)
        case "true", "True", "TRUE":
            return .init(text: text, value: .bool(true), isIntegerLiteral: false)
        case "false", "False", "FALSE":
            return .init(text: text, value: .bool(false), isIntegerLiteral: false)
        default: break
        }
        if let i = integerLiteral(text) {
            return .init(text: text, value: .number(Double(i)), isIntegerLiteral: true)
        }
        if isFloatLiteral(text), let d = Double(text), d.isFinite {
            return .init(text: text, value: .number(d), isIntegerLiteral: false)
        }
        return string
    }

    /// Decimal (`-12`), hexadecimal (`0x1F`) and octal (`0o17`) integers.
    static func integerLiteral(_ text: String) -> Int? {
        if text.hasPrefix("0x"), text.count > 2 { return Int(text.dropFirst(2), radix: 16) }
        if text.hasPrefix("0o"), text.count > 2 { return Int(text.dropFirst(2), radix: 8) }
        var digits = Substring(text)
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.unicodeScalars.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return Int(text.hasPrefix("+") ? String(text.dropFirst()) : text)
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
    static func isFloatLiteral(_ text: String) -> Bool {
        var s = Substring(text).unicodeScalars[...]
        func isDigit(_ c: Unicode.Scalar?) -> Bool { c.map { $0 >= "0" && $0 <= "9" } ?? false }
        if s.first == "-" || s.first == "+" { s = s.dropFirst() }
        var intDigits = 0, fracDigits = 0
        while isDigit(s.first) { s = s.dropFirst(); intDigits += 1 }
        if s.first == "." {
            s = s.dropFirst()
            while isDigit(s.first) { s = s.dropFirst(); fracDigits += 1 }
        }
        guard intDigits + fracDigits > 0, intDigits > 0 || fracDigits > 0 else { return false }
        if s.first == "e" || s.first == "E" {
            s = s.dropFirst()
            if s.first == "-" || s.first == "+" { s = s.dropFirst() }
            var expDigits = 0
            while isDigit(s.first) { s = s.dropFirst(); expDigits += 1 }
            if expDigits == 0 { return false }
        }
        return s.isEmpty
    }
}
