import Foundation

// The stateful steps: `aggregate`, `window` and `process`, and the names they refer to.

extension ConfigValidator {
    // MARK: stateful steps

    func aggregatorName(_ node: ConfigNode) -> String? {
        registeredName(node, kind: "aggregator", among: registry.aggregators)
    }

    func processorName(_ node: ConfigNode) -> String? {
        registeredName(node, kind: "processor", among: registry.processors)
    }

    /// A name that must be in `registered` (an aggregator or a processor), with a did-you-mean.
    private func registeredName(_ node: ConfigNode, kind: String, among registered: Set<String>) -> String? {
        guard let s = string(node, kind, expected: "a registered \(kind) name") else { return nil }
        guard registered.contains(s) else {
            let names = registered.sorted()
            let expected = names.isEmpty ? "a registered \(kind), but none are registered" : "one of \(ConfigSuggest.list(names))"
            report(node.location, "unknown \(kind) '\(s)'; expected \(expected)" + ConfigSuggest.hint(for: s, in: names))
            return nil
        }
        return s
    }

    func storeName(_ node: ConfigNode) -> String? {
        guard let s = name(node, "store name", .store) else { return nil }
        registerStore(s, at: node.location)
        return s
    }

    static let aggregateKeys = ["store", "aggregator", "params", "ttl"]

    func aggregateStep(_ node: ConfigNode) -> AggregateSpec? {
        guard let m = map(node, "'aggregate'", expected: "a map with 'store' and 'aggregator'") else { return nil }
        checkKeys(m, allowed: Self.aggregateKeys, in: "aggregate")
        let store = require(m, "store", in: "aggregate", expected: NameRule.store.expected).flatMap(storeName)
        let aggregator = require(m, "aggregator", in: "aggregate", expected: "a registered aggregator name").flatMap(aggregatorName)
        let params = params(m["params"], "params")
        var ttl: Int?
        var ok = true
        if let v = m["ttl"] {
            ttl = duration(v, "ttl")
            ok = ttl != nil
        }
        guard let store, let aggregator, let params, ok else { return nil }
        return AggregateSpec(store: store, aggregator: aggregator, params: params, ttlMillis: ttl)
    }

    static let windowKeys = ["type", "size", "advance", "gap", "grace", "store", "aggregator", "params", "close_idle_after"]

    func windowStep(_ node: ConfigNode) -> WindowSpec? {
        guard let m = map(node, "'window'", expected: "a map with 'type', 'store' and 'aggregator'") else { return nil }
        checkKeys(m, allowed: Self.windowKeys, in: "window")
        var ok = true
        let typeName: String? = require(m, "type", in: "window", expected: "one of tumbling, hopping, session")
            .flatMap { choice($0, "type", [("tumbling", "tumbling"), ("hopping", "hopping"), ("session", "session")]) }
        if typeName == nil { ok = false }

        /// A duration key that must be present for some types and absent for the others.
        func sized(_ key: String, requiredFor types: Set<String>) -> Int? {
            guard let typeName else {
                if let v = m[key] { _ = duration(v, key) }
                return nil
            }
            let list = types.sorted().joined(separator: " and ")
            if types.contains(typeName) {
                guard let v = require(m, key, in: "\(typeName) window", expected: "a duration such as 30s, 5m or 1h") else {
                    ok = false
                    return nil
                }
                let ms = duration(v, key)
                if ms == nil { ok = false }
                return ms
            }
            if m[key] != nil {
                report(m.keyLocation(key) ?? m.location, "'\(key)' is not allowed for a \(typeName) window; expected it only for \(list) windows")
                ok = false
            }
            return nil
        }
        let size = sized("size", requiredFor: ["tumbling", "hopping"])
        let advance = sized("advance", requiredFor: ["hopping"])
        let gap = sized("gap", requiredFor: ["session"])
        if let size, let advance, advance > size, let v = m["advance"] {
            report(v.location, "'advance' (\(advance) ms) is larger than 'size' (\(size) ms); expected an advance no larger than the window size")
            ok = false
        }
        var grace = 0
        if let v = m["grace"] {
            if let g = duration(v, "grace", allowZero: true) { grace = g } else { ok = false }
        }
        var closeIdle: Int?
        if let v = m["close_idle_after"] {
            if let d = duration(v, "close_idle_after", allowZero: false) { closeIdle = d } else { ok = false }
        }
        let store = require(m, "store", in: "window", expected: NameRule.store.expected).flatMap(storeName)
        let aggregator = require(m, "aggregator", in: "window", expected: "a registered aggregator name").flatMap(aggregatorName)
        let params = params(m["params"], "params")
        guard ok, let typeName, let store, let aggregator, let params else { return nil }
        let type: WindowType
        switch typeName {
        case "tumbling": guard let size else { return nil }; type = .tumbling(sizeMillis: size)
        case "hopping": guard let size, let advance else { return nil }; type = .hopping(sizeMillis: size, advanceMillis: advance)
        default: guard let gap else { return nil }; type = .session(gapMillis: gap)
        }
        return WindowSpec(type: type, graceMillis: grace, store: store, aggregator: aggregator, params: params, closeIdleAfterMillis: closeIdle)
    }

    func processStep(_ node: ConfigNode) -> ProcessSpec? {
        guard let m = map(node, "'process'", expected: "a map with 'processor'") else { return nil }
        checkKeys(m, allowed: ["processor", "stores", "params"], in: "process")
        let processor = require(m, "processor", in: "process", expected: "a registered processor name").flatMap(processorName)
        var stores: [String] = []
        var ok = true
        if let v = optional(m, "stores", nullIsAbsent: true) {
            let list = stringList(v, "stores", item: "store name", rule: .store, allowEmpty: true)
            for (s, loc) in list.items {
                registerStore(s, at: loc)
                stores.append(s)
            }
            if !list.ok { ok = false }
        }
        let params = params(m["params"], "params")
        guard ok, let processor, let params else { return nil }
        return ProcessSpec(processor: processor, stores: stores, params: params)
    }
}
