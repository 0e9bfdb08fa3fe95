import Foundation

// The stateless steps: `filter` predicates and `select` expressions.

extension ConfigValidator {
    // MARK: filter

    static let predicateKeys = ["field", "op", "value"]

    func filterStep(_ node: ConfigNode) -> [FieldPredicate]? {
        let expected = "a condition map { field, op, value } or a list of them"
        var items: [ConfigNode]
        switch node.kind {
        case .mapping: items = [node]
        case .sequence(let list): items = list
        case .scalar:
            report(node.location, "invalid value \(node.shortDescription) for 'filter'; expected \(expected)")
            return nil
        }
        if items.isEmpty {
            report(node.location, "'filter' is empty; expected \(expected)")
            return nil
        }
        var out: [FieldPredicate] = []
        var ok = true
        for item in items {
            if let p = predicate(item) { out.append(p) } else { ok = false }
        }
        return ok ? out : nil
    }

    func predicate(_ node: ConfigNode) -> FieldPredicate? {
        let ops = PredicateOp.allCases.map(\.rawValue)
        guard let m = map(node, "a filter condition", expected: "a map with 'field', 'op' and 'value'") else { return nil }
        checkKeys(m, allowed: Self.predicateKeys, in: "filter condition")
        var field: String?
        if let v = require(m, "field", in: "filter condition", expected: "the field to test") {
            field = name(v, "field", .field)
        }
        var op: PredicateOp?
        if let v = require(m, "op", in: "filter condition", expected: "one of \(ConfigSuggest.list(ops))") {
            op = choice(v, "op", PredicateOp.self)
        }
        guard let field, let op else { return nil }
        let valueNode = m["value"]
        var value: JSONValue?
        switch op {
        case .exists, .missing:
            if let valueNode {
                report(m.keyLocation("value") ?? valueNode.location, "'value' is not allowed with op '\(op.rawValue)'; expected only 'field' and 'op'")
                return nil
            }
        case .in, .notIn:
            guard let valueNode else {
                report(m.location, "missing required key 'value' in filter condition; expected a list of values for op '\(op.rawValue)'")
                return nil
            }
            guard case .sequence(let items) = valueNode.kind, !items.isEmpty else {
                report(valueNode.location, "invalid value \(valueNode.shortDescription) for op '\(op.rawValue)'; expected a non-empty list of scalar values")
                return nil
            }
            for item in items where item.scalar == nil {
                report(item.location, "invalid list element \(item.shortDescription) for op '\(op.rawValue)'; expected a scalar value")
                return nil
            }
            value = valueNode.value
        case .eq, .ne, .gt, .gte, .lt, .lte:
            guard let valueNode else {
                report(m.location, "missing required key 'value' in filter condition; expected a scalar to compare with for op '\(op.rawValue)'")
                return nil
            }
            guard let s = valueNode.scalar else {
                let hint = valueNode.kind.isSequence ? " (use op 'in' for a list)" : ""
                report(valueNode.location, "invalid value \(valueNode.shortDescription) for op '\(op.rawValue)'; expected a scalar value\(hint)")
                return nil
            }
            if op != .eq && op != .ne {
                switch s.value {
                case .number, .string: break
                default:
                    report(valueNode.location, "invalid value \(valueNode.shortDescription) for op '\(op.rawValue)'; expected a number or a string")
                    return nil
                }
            }
            value = s.value
        }
        return FieldPredicate(field: field, op: op, value: value, location: m.location)
    }

    // MARK: select

    func selectStep(_ node: ConfigNode) -> [SelectField]? {
        guard let m = map(node, "'select'", expected: "a map of output field to expression") else { return nil }
        if m.entries.isEmpty {
            report(node.location, "'select' is empty; expected at least one output field")
            return nil
        }
        var out: [SelectField] = []
        var ok = true
        for entry in m.entries {
            if let e = selectExpression(entry.value, output: entry.key) {
                out.append(SelectField(name: entry.key, expression: e, location: entry.keyLocation))
            } else {
                ok = false
            }
        }
        return ok ? out : nil
    }

    func selectExpression(_ node: ConfigNode, output: String) -> SelectExpression? {
        let ops = SelectExpression.operatorNames
        let expected = "a field name or a map with exactly one of \(ConfigSuggest.list(ops))"
        switch node.kind {
        case .scalar(let s):
            guard case .string(let f) = s.value, !f.trimmingCharacters(in: .whitespaces).isEmpty else {
                let hint = node.isNull ? "" : " (write { const: \(s.text) } for a literal)"
                report(node.location, "invalid expression \(node.shortDescription) for select field '\(output)'; expected \(expected)\(hint)")
                return nil
            }
            return .field(f)
        case .sequence:
            report(node.location, "invalid expression \(node.shortDescription) for select field '\(output)'; expected \(expected)")
            return nil
        case .mapping(let pairs):
            guard pairs.count == 1, let opText = pairs[0].key.scalar?.text else {
                report(node.location, "invalid expression for select field '\(output)': a map with \(pairs.count) keys; expected \(expected)")
                return nil
            }
            let argument = pairs[0].value
            let opLocation = pairs[0].key.location
            switch opText {
            case "const":
                guard let s = argument.scalar else {
                    report(argument.location, "invalid value \(argument.shortDescription) for 'const'; expected a scalar (string, number, boolean or null)")
                    return nil
                }
                return .const(s.value)
            case "mul", "add":
                return operands(argument, op: opText, minimum: 2, numericOnly: true).map { opText == "mul" ? .mul($0) : .add($0) }
            case "concat":
                return operands(argument, op: opText, minimum: 1, numericOnly: false).map { .concat($0) }
            case "coalesce":
                return operands(argument, op: opText, minimum: 1, numericOnly: false).map { .coalesce($0) }
            default:
                report(opLocation, "unknown expression '\(opText)' for select field '\(output)'; expected one of \(ConfigSuggest.list(ops))"
                    + ConfigSuggest.hint(for: opText, in: ops))
                return nil
            }
        }
    }

    func operands(_ node: ConfigNode, op: String, minimum: Int, numericOnly: Bool) -> [SelectOperand]? {
        let kinds = numericOnly ? "field names or numbers" : "field names, numbers or { const: value }"
        guard case .sequence(let items) = node.kind, items.count >= minimum else {
            report(node.location, "invalid value \(node.shortDescription) for '\(op)'; expected a list of at least \(minimum) \(kinds)")
            return nil
        }
        var out: [SelectOperand] = []
        var ok = true
        for item in items {
            switch item.kind {
            case .scalar(let s):
                switch s.value {
                case .string(let f) where !f.isEmpty: out.append(.field(f))
                case .number: out.append(.literal(s.value))
                default:
                    report(item.location, "invalid operand \(item.shortDescription) for '\(op)'; expected \(kinds)")
                    ok = false
                }
            case .mapping(let pairs):
                if pairs.count == 1, pairs[0].key.scalar?.text == "const", let s = pairs[0].value.scalar {
                    if numericOnly, case .number = s.value {} else if numericOnly {
                        report(pairs[0].value.location, "invalid constant \(pairs[0].value.shortDescription) for '\(op)'; expected a number")
                        ok = false
                        continue
                    }
                    out.append(.literal(s.value))
                } else {
                    report(item.location, "invalid operand \(item.shortDescription) for '\(op)'; expected \(kinds)")
                    ok = false
                }
            case .sequence:
                report(item.location, "invalid operand \(item.shortDescription) for '\(op)'; expected \(kinds)")
                ok = false
            }
        }
        return ok ? out : nil
    }
}

extension ConfigNode.Kind {
    var isSequence: Bool {
        if case .sequence = self { return true }
        return false
    }
}
