import Foundation

// The node toolkit: maps, scalars, names, durations and lists, each reporting what it expected.

extension ConfigValidator {
    // MARK: - Maps

    /// A mapping with string keys.
    struct MapView {
        var location: SourceLocation
        var entries: [(key: String, keyLocation: SourceLocation, value: ConfigNode)]

        subscript(key: String) -> ConfigNode? {
            entries.first { $0.key == key }?.value
        }

        func keyLocation(_ key: String) -> SourceLocation? {
            entries.first { $0.key == key }?.keyLocation
        }
    }

    /// The node as a map, or nil (with a diagnostic) if it is not one.
    func map(_ node: ConfigNode, _ what: String, expected: String) -> MapView? {
        guard case .mapping(let pairs) = node.kind else {
            report(node.location, "\(what) must be a map; expected \(expected), got \(node.shortDescription)")
            return nil
        }
        var entries: [(key: String, keyLocation: SourceLocation, value: ConfigNode)] = []
        for (k, v) in pairs {
            guard let s = k.scalar, !k.isNull else {
                report(k.location, "keys in \(what) must be strings; got \(k.shortDescription)")
                continue
            }
            entries.append((s.text, k.location, v))
        }
        return MapView(location: node.location, entries: entries)
    }

    /// Reports every key of `m` not in `allowed`, with a did-you-mean.
    func checkKeys(_ m: MapView, allowed: [String], in what: String) {
        for entry in m.entries where !allowed.contains(entry.key) {
            report(entry.keyLocation, "unknown key '\(entry.key)' in \(what); expected one of \(ConfigSuggest.list(allowed))"
                + ConfigSuggest.hint(for: entry.key, in: allowed))
        }
    }

    /// The value of a required key, or nil with a diagnostic at the map.
    func require(_ m: MapView, _ key: String, in what: String, expected: String) -> ConfigNode? {
        if let v = m[key] { return v }
        report(m.location, "missing required key '\(key)' in \(what); expected \(expected)")
        return nil
    }

    /// The value of an optional key; an explicit null counts as absent when `nullIsAbsent`.
    func optional(_ m: MapView, _ key: String, nullIsAbsent: Bool = false) -> ConfigNode? {
        guard let v = m[key] else { return nil }
        if nullIsAbsent && v.isNull { return nil }
        return v
    }

    // MARK: - Scalars

    /// A non-null scalar's text.
    func string(_ node: ConfigNode, _ what: String, expected: String = "a string") -> String? {
        guard let s = node.scalar, !node.isNull else {
            report(node.location, "invalid value \(node.shortDescription) for '\(what)'; expected \(expected)")
            return nil
        }
        return s.text
    }

    enum NameRule {
        case store, pipeline, applicationId, topic, field

        var expected: String {
            switch self {
            case .store: return "a store name of lowercase letters, digits and '-'"
            case .pipeline: return "a pipeline name of lowercase letters, digits and '-'"
            case .applicationId: return "an id of letters, digits, '.', '_' and '-'"
            case .topic: return "a topic name of letters, digits, '.', '_' and '-' (at most 249 characters)"
            case .field: return "a field name (a non-empty string)"
            }
        }

        func accepts(_ s: String) -> Bool {
            guard !s.isEmpty else { return false }
            let scalars = s.unicodeScalars
            func lowerDigitDash(_ c: Unicode.Scalar) -> Bool { (c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "-" }
            func kafkaLegal(_ c: Unicode.Scalar) -> Bool {
                (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-"
            }
            switch self {
            case .store, .pipeline: return scalars.allSatisfy(lowerDigitDash)
            case .applicationId: return scalars.allSatisfy(kafkaLegal)
            case .topic: return scalars.count <= 249 && s != "." && s != ".." && scalars.allSatisfy(kafkaLegal)
            case .field: return !s.trimmingCharacters(in: .whitespaces).isEmpty
            }
        }
    }

    /// A string that must follow a naming rule.
    func name(_ node: ConfigNode, _ what: String, _ rule: NameRule) -> String? {
        guard let s = string(node, what, expected: rule.expected) else { return nil }
        guard rule.accepts(s) else {
            report(node.location, "invalid \(what) '\(s)'; expected \(rule.expected)")
            return nil
        }
        return s
    }

    /// An integer greater than zero (numeric strings are accepted too).
    func positiveInt(_ node: ConfigNode, _ what: String) -> Int? {
        if let s = node.scalar, !node.isNull,
           let i = s.isIntegerLiteral ? s.value.intValue.flatMap({ Int(exactly: $0) }) : Int(s.text.trimmingCharacters(in: .whitespaces)), i > 0 {
            return i
        }
        report(node.location, "invalid value \(node.shortDescription) for '\(what)'; expected an integer greater than 0")
        return nil
    }

    /// One of a fixed set of names, with a did-you-mean.
    func choice<T>(_ node: ConfigNode, _ what: String, _ options: [(String, T)]) -> T? {
        let names = options.map(\.0)
        guard let s = node.scalar, !node.isNull else {
            report(node.location, "invalid value \(node.shortDescription) for '\(what)'; expected one of \(ConfigSuggest.list(names))")
            return nil
        }
        if let match = options.first(where: { $0.0 == s.text }) { return match.1 }
        report(node.location, "invalid value '\(s.text)' for '\(what)'; expected one of \(ConfigSuggest.list(names))"
            + ConfigSuggest.hint(for: s.text, in: names))
        return nil
    }

    func choice<T: RawRepresentable & CaseIterable>(_ node: ConfigNode, _ what: String, _ type: T.Type) -> T? where T.RawValue == String {
        choice(node, what, T.allCases.map { ($0.rawValue, $0) })
    }

    /// A duration such as `30s` or `1h30m`, in milliseconds (see ``DurationSpec``); a bare `0`
    /// is accepted where zero is allowed.
    func duration(_ node: ConfigNode, _ what: String, allowZero: Bool = false) -> Int? {
        let expected = "a duration such as 500ms, 30s, 5m, 1h, 30d or 1h30m"
        guard let s = node.scalar, !node.isNull else {
            report(node.location, "invalid value \(node.shortDescription) for '\(what)'; expected \(expected)")
            return nil
        }
        let ms: Int64
        if allowZero, s.text.trimmingCharacters(in: .whitespaces) == "0" {
            ms = 0
        } else {
            do {
                ms = try DurationSpec.parse(s.text)
            } catch {
                report(node.location, "invalid duration '\(s.text)' for '\(what)' (\(error.reason)); expected \(expected)")
                return nil
            }
        }
        if ms == 0 && !allowZero {
            report(node.location, "invalid duration '\(s.text)' for '\(what)'; expected a duration greater than zero")
            return nil
        }
        guard let millis = Int(exactly: ms) else {
            report(node.location, "invalid duration '\(s.text)' for '\(what)' (too large); expected \(expected)")
            return nil
        }
        return millis
    }

    /// A string, or a list of strings; each valid element with its location, and whether all were valid.
    func stringList(_ node: ConfigNode, _ what: String, item: String, rule: NameRule, allowEmpty: Bool = false)
        -> (items: [(String, SourceLocation)], ok: Bool)
    {
        switch node.kind {
        case .scalar:
            if node.isNull { break }
            if let s = name(node, item, rule) { return ([(s, node.location)], true) }
            return ([], false)
        case .sequence(let items):
            if items.isEmpty && !allowEmpty {
                report(node.location, "'\(what)' is empty; expected at least one \(rule.expected)")
                return ([], false)
            }
            var out: [(String, SourceLocation)] = []
            var ok = true
            for element in items {
                if let s = name(element, item, rule) { out.append((s, element.location)) } else { ok = false }
            }
            return (out, ok)
        case .mapping:
            break
        }
        report(node.location, "invalid value \(node.shortDescription) for '\(what)'; expected \(rule.expected) or a list of them")
        return ([], false)
    }

    /// A free-form `params` map.
    func params(_ node: ConfigNode?, _ what: String) -> JSONObject? {
        guard let node, !node.isNull else { return [:] }
        guard case .mapping(let pairs) = node.kind else {
            report(node.location, "invalid value \(node.shortDescription) for '\(what)'; expected a map of parameters")
            return nil
        }
        var ok = true
        for (key, _) in pairs where key.scalar == nil || key.isNull {
            report(key.location, "keys in '\(what)' must be strings; got \(key.shortDescription)")
            ok = false
        }
        guard ok, case .object(let object) = node.value else { return nil }
        return object
    }
}
