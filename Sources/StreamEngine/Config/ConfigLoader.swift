import Foundation
import Yams

/// Loads and validates `topologies.yaml`.
///
/// Every problem in the file is reported, each with file, line and column, in one
/// ``ConfigErrors``; a configuration is returned only when there are none.
public enum ConfigLoader {
    /// Reads, parses and validates the file at `path`.
    ///
    /// - Parameters:
    ///   - path: the file; diagnostics name it exactly as given.
    ///   - registry: the aggregator and processor names `aggregator:` and `processor:` may use.
    ///   - environment: the variables for `${VAR}` / `${VAR:-default}` substitution.
    /// - Throws: ``ConfigErrors`` with every problem found.
    public static func load(
        path: String,
        registry: NameRegistry,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigErrors) -> StreamConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigErrors(diagnostics: [
                ConfigDiagnostic(file: path, line: 0, column: 0,
                                 message: "cannot read the configuration file: \(error.localizedDescription); expected a readable UTF-8 YAML file"),
            ])
        }
        return try load(yaml: text, file: path, registry: registry, environment: environment)
    }

    /// Parses and validates YAML text.
    ///
    /// - Parameters:
    ///   - yaml: the contents of the file.
    ///   - file: the file name used in diagnostics and stored as ``StreamConfig/sourceFile``.
    ///   - registry: the aggregator and processor names `aggregator:` and `processor:` may use.
    ///   - environment: the variables for `${VAR}` / `${VAR:-default}` substitution.
    /// - Throws: ``ConfigErrors`` with every problem found.
    public static func load(
        yaml: String,
        file: String = "topologies.yaml",
        registry: NameRegistry,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigErrors) -> StreamConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigErrors(diagnostics: [
                    ConfigDiagnostic(file: file, line: 1, column: 1,
                                     message: "the file is empty; expected a map with 'application.id' and 'topologies'"),
                ])
            }
            root = node
        } catch let error as ConfigErrors {
            throw error
        } catch {
            throw ConfigErrors(diagnostics: [yamlDiagnostic(error, file: file, yaml: yaml)])
        }
        var builder = ConfigNodeBuilder(file: file, environment: environment)
        let tree = builder.build(root)
        let validator = ConfigValidator(file: file, registry: registry)
        validator.diagnostics = builder.diagnostics
        validator.suppressed = Set(builder.diagnostics.map(\.location))
        let config = validator.validate(root: tree)
        let diagnostics = validator.sortedDiagnostics
        if let config, diagnostics.isEmpty { return config }
        throw ConfigErrors(diagnostics: diagnostics.isEmpty
            ? [ConfigDiagnostic(file: file, line: 1, column: 1, message: "invalid configuration")]
            : diagnostics)
    }

    /// Turns a Yams error into a diagnostic with a position.
    static func yamlDiagnostic(_ error: any Error, file: String, yaml: String) -> ConfigDiagnostic {
        func context(_ c: YamlError.Context?) -> String {
            guard let c else { return "" }
            return " (\(c.text) at line \(c.mark.line), column \(c.mark.column))"
        }
        guard let yamlError = error as? YamlError else {
            return ConfigDiagnostic(file: file, line: 1, column: 1, message: "invalid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let c, let problem, let mark, _), .parser(let c, let problem, let mark, _),
             .composer(let c, let problem, let mark, _):
            return ConfigDiagnostic(file: file, line: mark.line, column: mark.column,
                                    message: "invalid YAML: \(problem)\(context(c))")
        case .reader(let problem, let offset, _, _):
            var line = 1, column = 1
            if let offset {
                for ch in yaml.prefix(offset) {
                    if ch == "\n" || ch == "\r\n" { line += 1; column = 1 } else { column += ch.unicodeScalars.count }
                }
            }
            return ConfigDiagnostic(file: file, line: line, column: column,
                                    message: "invalid YAML: \(problem); expected UTF-8 text without control characters")
        case .duplicatedKeysInMapping(let duplicates, let c):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return ConfigDiagnostic(file: file, line: c.mark.line, column: c.mark.column,
                                    message: "duplicate key \(keys) in a map; expected each key at most once")
        default:
            return ConfigDiagnostic(file: file, line: 1, column: 1, message: "invalid YAML: \(yamlError)")
        }
    }
}

/// Walks the node tree, building specs and collecting every problem.
final class ConfigValidator {
    let file: String
    let registry: NameRegistry
    var diagnostics: [ConfigDiagnostic] = []
    /// Locations already reported (failed `${VAR}` substitutions): later problems there are
    /// consequences of the first one and are not reported again.
    var suppressed: Set<SourceLocation> = []

    /// Store name -> where it was first declared (pipelines' stores and global tables).
    private var stores: [String: SourceLocation] = [:]
    private var pipelineNames: [String: SourceLocation] = [:]
    /// `to` topics with their locations, checked against engine-owned topics at the end.
    private var sinkTopics: [(topic: String, location: SourceLocation)] = []

    init(file: String, registry: NameRegistry) {
        self.file = file
        self.registry = registry
    }

    var sortedDiagnostics: [ConfigDiagnostic] {
        diagnostics.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
    }

    func report(_ location: SourceLocation, _ message: String) {
        guard !suppressed.contains(location) else { return }
        diagnostics.append(ConfigDiagnostic(at: location, message: message))
    }

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

    // MARK: - Document

    static let topLevelKeys = ["application.id", "kafka", "redis", "http", "defaults", "global_tables", "topologies"]
    static let defaultsKeys = ["processing.guarantee", "commit.interval.ms", "dlq.topic", "on_error", "partitions"]

    func validate(root: ConfigNode) -> StreamConfig? {
        guard let top = map(root, "the configuration file", expected: "a map with 'application.id' and 'topologies'") else {
            return nil
        }
        checkKeys(top, allowed: Self.topLevelKeys, in: "the top level")

        var applicationId: String?
        if let node = require(top, "application.id", in: "the top level", expected: NameRule.applicationId.expected) {
            applicationId = name(node, "application.id", .applicationId)
        }

        var kafka: [String: String] = [:]
        if let node = optional(top, "kafka", nullIsAbsent: true),
           let m = map(node, "'kafka'", expected: "a map of librdkafka settings to scalar values") {
            for entry in m.entries {
                guard let s = entry.value.scalar, !entry.value.isNull else {
                    report(entry.value.location, "invalid value \(entry.value.shortDescription) for kafka setting '\(entry.key)'; expected a scalar (string, number or boolean)")
                    continue
                }
                kafka[entry.key] = s.text
            }
        }

        var redisURL: String?
        if let node = optional(top, "redis", nullIsAbsent: true),
           let m = map(node, "'redis'", expected: "a map with 'url'") {
            checkKeys(m, allowed: ["url"], in: "redis")
            if let url = require(m, "url", in: "redis", expected: "a Redis URL such as redis://127.0.0.1:6379/0") {
                redisURL = string(url, "url", expected: "a Redis URL such as redis://127.0.0.1:6379/0")
            }
        }

        var httpListen: String?
        if let node = optional(top, "http", nullIsAbsent: true),
           let m = map(node, "'http'", expected: "a map with 'listen'") {
            checkKeys(m, allowed: ["listen"], in: "http")
            if let v = require(m, "listen", in: "http", expected: "an address host:port such as 127.0.0.1:8080"),
               let text = string(v, "listen", expected: "an address host:port such as 127.0.0.1:8080") {
                let parts = text.split(separator: ":", omittingEmptySubsequences: false)
                if parts.count != 2 || parts[0].isEmpty || UInt16(parts[1]) == nil {
                    report(v.location, "invalid http listen address '\(text)'; expected host:port such as 127.0.0.1:8080")
                } else {
                    httpListen = text
                }
            }
        }

        var guarantee = ProcessingGuarantee.atLeastOnce
        var commitInterval = 100
        var dlqTopic: String?
        var onError = ErrorPolicy.deadLetter
        var partitions = 4
        if let node = optional(top, "defaults", nullIsAbsent: true),
           let m = map(node, "'defaults'", expected: "a map with any of \(ConfigSuggest.list(Self.defaultsKeys))") {
            checkKeys(m, allowed: Self.defaultsKeys, in: "defaults")
            if let v = m["processing.guarantee"], let g = choice(v, "processing.guarantee", ProcessingGuarantee.self) { guarantee = g }
            if let v = m["commit.interval.ms"], let i = positiveInt(v, "commit.interval.ms") { commitInterval = i }
            if let v = m["dlq.topic"] { dlqTopic = name(v, "dlq.topic", .topic) }
            if let v = m["on_error"], let p = choice(v, "on_error", ErrorPolicy.self) { onError = p }
            if let v = m["partitions"], let i = positiveInt(v, "partitions") { partitions = i }
        }

        var globalTables: [GlobalTableSpec] = []
        if let node = optional(top, "global_tables", nullIsAbsent: true) {
            if case .sequence(let items) = node.kind {
                for item in items {
                    if let table = globalTable(item) { globalTables.append(table) }
                }
            } else {
                report(node.location, "invalid value \(node.shortDescription) for 'global_tables'; expected a list of maps with 'name' and 'topic'")
            }
        }

        var pipelines: [PipelineSpec] = []
        if let node = require(top, "topologies", in: "the top level", expected: "a non-empty list of pipelines") {
            if case .sequence(let items) = node.kind {
                if items.isEmpty {
                    report(node.location, "'topologies' is empty; expected at least one pipeline")
                }
                for (index, item) in items.enumerated() {
                    if let p = pipeline(item, index: index, defaultOnError: onError) { pipelines.append(p) }
                }
            } else {
                report(node.location, "invalid value \(node.shortDescription) for 'topologies'; expected a non-empty list of pipelines")
            }
        }

        guard let applicationId else { return nil }
        var config = StreamConfig(
            applicationId: applicationId, kafka: kafka, redisURL: redisURL,
            processingGuarantee: guarantee, commitIntervalMs: commitInterval, dlqTopic: dlqTopic,
            onError: onError, defaultPartitions: partitions, globalTables: globalTables,
            pipelines: pipelines, sourceFile: file)
        config.httpListen = httpListen
        checkEngineOwnedTopics(config)
        return config
    }

    /// `to` steps must not write into changelog or repartition topics.
    func checkEngineOwnedTopics(_ config: StreamConfig) {
        var owned: [String: String] = [:]
        for store in config.storeNames { owned[config.changelogTopic(store: store)] = "the changelog of store '\(store)'" }
        for p in config.pipelines where p.rekeyIndex != nil {
            owned[config.repartitionTopic(pipeline: p.name)] = "the repartition topic of pipeline '\(p.name)'"
        }
        for (topic, location) in sinkTopics {
            if let what = owned[topic] {
                report(location, "topic '\(topic)' is \(what), which the engine owns; expected a topic the engine does not manage")
            }
        }
    }

    func registerStore(_ name: String, at location: SourceLocation) {
        if let previous = stores[name] {
            report(location, "store '\(name)' is already defined at \(previous); expected store names (global tables included) to be unique across the file")
        } else {
            stores[name] = location
        }
    }

    func globalTable(_ node: ConfigNode) -> GlobalTableSpec? {
        guard let m = map(node, "a global table", expected: "a map with 'name' and 'topic'") else { return nil }
        checkKeys(m, allowed: ["name", "topic"], in: "global table")
        var tableName: String?
        if let v = require(m, "name", in: "global table", expected: NameRule.store.expected) {
            tableName = name(v, "global table name", .store)
            if let tableName { registerStore(tableName, at: v.location) }
        }
        var topic: String?
        if let v = require(m, "topic", in: "global table", expected: "the compacted topic to materialise") {
            topic = name(v, "topic", .topic)
        }
        guard let tableName, let topic else { return nil }
        return GlobalTableSpec(name: tableName, topic: topic, location: m.location)
    }

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
        default:
            report(loc, "unknown step '\(kind)'; expected one of \(ConfigSuggest.list(kinds))" + ConfigSuggest.hint(for: kind, in: kinds))
            return nil
        }
    }

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

    // MARK: stateful steps

    func aggregatorName(_ node: ConfigNode) -> String? {
        guard let s = string(node, "aggregator", expected: "a registered aggregator name") else { return nil }
        guard registry.aggregators.contains(s) else {
            let names = registry.aggregators.sorted()
            let expected = names.isEmpty ? "a registered aggregator, but none are registered" : "one of \(ConfigSuggest.list(names))"
            report(node.location, "unknown aggregator '\(s)'; expected \(expected)" + ConfigSuggest.hint(for: s, in: names))
            return nil
        }
        return s
    }

    func processorName(_ node: ConfigNode) -> String? {
        guard let s = string(node, "processor", expected: "a registered processor name") else { return nil }
        guard registry.processors.contains(s) else {
            let names = registry.processors.sorted()
            let expected = names.isEmpty ? "a registered processor, but none are registered" : "one of \(ConfigSuggest.list(names))"
            report(node.location, "unknown processor '\(s)'; expected \(expected)" + ConfigSuggest.hint(for: s, in: names))
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

    static let windowKeys = ["type", "size", "advance", "gap", "grace", "store", "aggregator", "params"]

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
        return WindowSpec(type: type, graceMillis: grace, store: store, aggregator: aggregator, params: params)
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

    // MARK: sinks

    func toStep(_ node: ConfigNode) -> ToSpec? {
        guard let m = map(node, "'to'", expected: "a map with 'topic' and optionally 'key'") else { return nil }
        checkKeys(m, allowed: ["topic", "key"], in: "to")
        let topic = require(m, "topic", in: "to", expected: "the output topic").flatMap { name($0, "topic", .topic) }
        var key: String?
        var ok = true
        if let v = m["key"] {
            key = name(v, "key", .field)
            ok = key != nil
        }
        guard ok, let topic else { return nil }
        if let loc = m["topic"]?.location { sinkTopics.append((topic, loc)) }
        return ToSpec(topic: topic, keyField: key)
    }

    static let redisKeys = ["key", "mode", "fields", "member", "members", "score", "value", "ttl", "field"]
    static let redisModeKeys: [String: [String]] = [
        "hash": ["fields"], "sorted_set": ["member", "members", "score"], "value": ["value"], "delete": [], "commands": ["field"],
    ]

    func redisStep(_ node: ConfigNode) -> RedisSinkSpec? {
        guard let m = map(node, "'redis'", expected: "a map with 'key' and 'mode'") else { return nil }
        checkKeys(m, allowed: Self.redisKeys, in: "redis")
        var ok = true
        var template: KeyTemplate?
        if let v = require(m, "key", in: "redis", expected: "a key template such as \"user:{userId}:stats\""),
           let s = string(v, "key", expected: "a key template such as \"user:{userId}:stats\"") {
            do {
                template = try KeyTemplate(parsing: s)
            } catch {
                self.report(v.location, error.message)
            }
        }
        let modes = ["hash", "sorted_set", "value", "delete", "commands"]
        let modeName = require(m, "mode", in: "redis", expected: "one of \(ConfigSuggest.list(modes))")
            .flatMap { choice($0, "mode", modes.map { ($0, $0) }) }
        var ttl: Int?
        if let v = m["ttl"] {
            ttl = duration(v, "ttl")
            if ttl == nil { ok = false }
        }
        guard let modeName else { return nil }

        let allowed = Self.redisModeKeys[modeName] ?? []
        for entry in m.entries where Self.redisKeys.contains(entry.key) && !["key", "mode", "ttl"].contains(entry.key) && !allowed.contains(entry.key) {
            let expected = allowed.isEmpty ? "no further keys" : "only \(ConfigSuggest.list(allowed))"
            report(entry.keyLocation, "'\(entry.key)' is not allowed in redis mode '\(modeName)'; expected \(expected) besides key, mode and ttl")
            ok = false
        }
        var mode: RedisMode?
        switch modeName {
        case "hash":
            var fields: [RedisFieldMapping]?
            if let v = optional(m, "fields", nullIsAbsent: true) {
                if let fm = map(v, "'fields'", expected: "a map of Redis hash field to record field"), !fm.entries.isEmpty {
                    var list: [RedisFieldMapping] = []
                    for entry in fm.entries {
                        if let f = name(entry.value, "fields.\(entry.key)", .field) {
                            list.append(RedisFieldMapping(redisField: entry.key, valueField: f))
                        } else {
                            ok = false
                        }
                    }
                    fields = list
                } else {
                    if case .mapping = v.kind { report(v.location, "'fields' is empty; expected a map of Redis hash field to record field, or no 'fields' for all top-level fields") }
                    ok = false
                }
            }
            mode = .hash(fields: fields)
        case "sorted_set":
            let member = m["member"], members = m["members"]
            switch (member, members) {
            case (nil, nil):
                report(m.location, "redis mode 'sorted_set' needs 'member' (with 'score') or 'members'; expected exactly one of them")
                ok = false
            case (.some, .some):
                report(m.keyLocation("members") ?? m.location, "redis mode 'sorted_set' takes 'member' or 'members', not both; expected exactly one of them")
                ok = false
            case (let member?, nil):
                let memberField = name(member, "member", .field)
                var scoreField: String?
                if let s = require(m, "score", in: "redis sorted_set with 'member'", expected: "the field holding the member's score") {
                    scoreField = name(s, "score", .field)
                }
                if let memberField, let scoreField {
                    mode = .sortedSetMember(memberField: memberField, scoreField: scoreField)
                } else {
                    ok = false
                }
            case (nil, let members?):
                if m["score"] != nil {
                    report(m.keyLocation("score") ?? m.location, "'score' is not allowed with 'members' (the members field holds member -> score); expected 'score' only with 'member'")
                    ok = false
                }
                if let f = name(members, "members", .field) { mode = .sortedSetMembers(membersField: f) } else { ok = false }
            }
        case "value":
            if let v = m["value"] {
                if let f = name(v, "value", .field) { mode = .value(field: f == "json" ? nil : f) } else { ok = false }
            } else {
                mode = .value(field: nil)
            }
        case "commands":
            if let v = require(m, "field", in: "redis mode 'commands'", expected: "the field holding a list of Redis commands") {
                if let f = name(v, "field", .field) { mode = .commands(field: f) } else { ok = false }
            } else {
                ok = false
            }
        default:
            mode = .delete
        }
        guard ok, let template, let mode else { return nil }
        return RedisSinkSpec(key: template, mode: mode, ttlMillis: ttl)
    }
}

extension ConfigNode.Kind {
    var isSequence: Bool {
        if case .sequence = self { return true }
        return false
    }
}
