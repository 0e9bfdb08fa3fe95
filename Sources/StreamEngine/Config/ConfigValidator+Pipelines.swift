import Foundation

// Pipelines, their source and the step dispatch.

extension ConfigValidator {
    // MARK: - Pipelines

    static let pipelineKeys = ["name", "source", "on_error", "steps"]
    static let sourceKeys = ["topics", "key", "timestamp", "timestamp.format", "required"]

    func pipeline(_ node: ConfigNode, index: Int, defaultOnError: ErrorPolicy) -> PipelineSpec? {
        guard let m = map(node, "pipeline #\(index + 1)", expected: "a map with \(ConfigSuggest.list(Self.pipelineKeys))") else {
            return nil
        }
        var pipelineName: String?
        if let v = m["name"] {
            pipelineName = name(v, "pipeline name", .pipeline)
            if let n = pipelineName {
                if let previous = pipelineNames[n] {
                    report(v.location, "duplicate pipeline name '\(n)', already used at \(previous); expected unique pipeline names")
                } else {
                    pipelineNames[n] = v.location
                }
            }
        }
        let label = pipelineName.map { "pipeline '\($0)'" } ?? "pipeline #\(index + 1)"
        checkKeys(m, allowed: Self.pipelineKeys, in: label)
        if m["name"] == nil {
            report(m.location, "missing required key 'name' in \(label); expected \(NameRule.pipeline.expected)")
        }

        var source: SourceSpec?
        if let v = require(m, "source", in: label,
                           expected: "a map with 'topics' (and optionally \(ConfigSuggest.list(Array(Self.sourceKeys.dropFirst()))))") {
            source = sourceSpec(v, label: label)
        }

        var onError = defaultOnError
        var onErrorOK = true
        if let v = m["on_error"] {
            if let p = choice(v, "on_error", ErrorPolicy.self) { onError = p } else { onErrorOK = false }
        }

        var steps: [StepSpec] = []
        var stepsOK = true
        if let v = require(m, "steps", in: label, expected: "a non-empty list of steps") {
            if case .sequence(let items) = v.kind {
                if items.isEmpty {
                    report(v.location, "'steps' of \(label) is empty; expected at least one step (\(ConfigSuggest.list(StepSpec.kindNames)))")
                    stepsOK = false
                }
                var rekeyAt: SourceLocation?
                for item in items {
                    guard let step = step(item) else { stepsOK = false; continue }
                    if case .rekey(_, let loc) = step {
                        if let first = rekeyAt {
                            report(loc, "a second 'rekey' in \(label) (the first is at \(first)); expected at most one rekey per pipeline")
                            stepsOK = false
                        } else {
                            rekeyAt = loc
                        }
                    }
                    steps.append(step)
                }
            } else {
                report(v.location, "invalid value \(v.shortDescription) for 'steps'; expected a non-empty list of steps")
                stepsOK = false
            }
        } else {
            stepsOK = false
        }

        guard let pipelineName, let source, onErrorOK, stepsOK else { return nil }
        return PipelineSpec(name: pipelineName, source: source, steps: steps, onError: onError, location: m.location)
    }

    func sourceSpec(_ node: ConfigNode, label: String) -> SourceSpec? {
        guard let m = map(node, "'source' of \(label)", expected: "a map with 'topics'") else { return nil }
        checkKeys(m, allowed: Self.sourceKeys, in: "source")
        var ok = true
        var topics: [String] = []
        if let v = require(m, "topics", in: "source of \(label)", expected: "a topic name or a list of topic names") {
            let list = stringList(v, "topics", item: "topic", rule: .topic)
            topics = list.items.map(\.0)
            if !list.ok { ok = false }
        } else {
            ok = false
        }
        var keyField: String?
        if let v = m["key"] {
            keyField = name(v, "key", .field)
            if keyField == nil { ok = false }
        }
        var timestampField: String?
        if let v = m["timestamp"] {
            timestampField = name(v, "timestamp", .field)
            if timestampField == nil { ok = false }
        }
        var format = TimestampFormat.iso8601
        if let v = m["timestamp.format"] {
            if let f = choice(v, "timestamp.format", TimestampFormat.self) { format = f } else { ok = false }
        }
        var required: [(field: String, type: FieldType)] = []
        if let v = optional(m, "required", nullIsAbsent: true) {
            let types = ConfigSuggest.list(FieldType.allCases.map(\.rawValue))
            if let rm = map(v, "'required'", expected: "a map of field name to type (\(types))") {
                for entry in rm.entries {
                    if let t = choice(entry.value, "required.\(entry.key)", FieldType.self) {
                        required.append((entry.key, t))
                    } else {
                        ok = false
                    }
                }
            } else {
                ok = false
            }
        }
        guard ok else { return nil }
        return SourceSpec(topics: topics, keyField: keyField, timestampField: timestampField,
                          timestampFormat: format, required: required, location: m.location)
    }

    // MARK: - Steps

    func step(_ node: ConfigNode) -> StepSpec? {
        let kinds = StepSpec.kindNames
        let expectedShape = "a map with exactly one key, the step kind (one of \(ConfigSuggest.list(kinds)))"
        guard case .mapping(let pairs) = node.kind else {
            var message = "invalid step \(node.shortDescription); expected \(expectedShape)"
            if let s = node.scalar?.text, !node.isNull {
                if kinds.contains(s) {
                    message += " whose value holds the step's settings"
                } else {
                    message += ConfigSuggest.hint(for: s, in: kinds)
                }
            }
            report(node.location, message)
            return nil
        }
        guard pairs.count == 1, let keyScalar = pairs[0].key.scalar else {
            let keys = pairs.map { $0.key.scalar?.text ?? $0.key.shortDescription }.map { "'\($0)'" }
            report(node.location, "a step has \(pairs.count) keys (\(keys.joined(separator: ", "))); expected \(expectedShape) — check the indentation of the step's settings")
            return nil
        }
        let kind = keyScalar.text
        let loc = pairs[0].key.location
        let body = pairs[0].value
        switch kind {
        case "filter":
            return filterStep(body).map { .filter($0, location: loc) }
        case "select":
            return selectStep(body).map { .select($0, location: loc) }
        case "rekey":
            guard let m = map(body, "'rekey'", expected: "a map with 'field'") else { return nil }
            checkKeys(m, allowed: ["field"], in: "rekey")
            guard let v = require(m, "field", in: "rekey", expected: "the field holding the new key"),
                  let f = name(v, "field", .field) else { return nil }
            return .rekey(field: f, location: loc)
        case "aggregate":
            return aggregateStep(body).map { .aggregate($0, location: loc) }
        case "window":
            return windowStep(body).map { .window($0, location: loc) }
        case "process":
            return processStep(body).map { .process($0, location: loc) }
        case "to":
            return toStep(body).map { .to($0, location: loc) }
        case "redis":
            return redisStep(body).map { .redis($0, location: loc) }
        case "sql":
            return sqlStep(body).map { .sql($0, location: loc) }
        default:
            report(loc, "unknown step '\(kind)'; expected one of \(ConfigSuggest.list(kinds))" + ConfigSuggest.hint(for: kind, in: kinds))
            return nil
        }
    }
}
