/// Renders a validated configuration as it will run: topics, steps, sub-topologies,
/// state stores with their changelog topics, and sinks. Works at compile time, with no
/// Kafka or Redis connection.
public enum TopologyDescriber {
    /// A plain-text description: per pipeline its source topics (with key and timestamp),
    /// each step in order, the sub-topology split at `rekey` (with the repartition topic),
    /// every state store with its changelog topic, and the sinks; then global tables and
    /// the dead-letter topic.
    /// - Parameter registry: the operators the file was validated against; with it, a `rekey`
    ///   whose upstream tasks combine before the repartition says so.
    public static func text(_ config: StreamConfig, registry: OperatorRegistry? = nil) -> String {
        var out: [String] = []
        out.append("application.id: \(config.applicationId)")
        out.append("source file: \(config.sourceFile)")
        if config.usesEmbeddedCluster {
            out.append("kafka: embedded cluster (input topics created with \(config.defaultPartitions) partitions)")
        } else {
            out.append("kafka: bootstrap.servers \(config.kafka["bootstrap.servers"] ?? "")")
        }
        let overrides = config.kafka.keys.filter { $0 != "bootstrap.servers" }.sorted()
        if !overrides.isEmpty {
            out.append("kafka settings: " + overrides.map { "\($0)=\(config.kafka[$0]!)" }.joined(separator: ", "))
        }
        out.append("processing guarantee: \(config.processingGuarantee.rawValue), commit interval \(config.commitIntervalMs) ms")
        out.append("on error: \(config.onError.rawValue)")
        out.append("dead-letter topic: \(config.dlqTopic)")
        if let url = config.redisURL { out.append("redis: \(url)") }
        if let url = config.sqlURL { out.append("sql: \(SQLSinkDescription.maskedURL(url))") }

        out.append("")
        if config.globalTables.isEmpty {
            out.append("global tables: none")
        } else {
            out.append("global tables:")
            for table in config.globalTables {
                out.append("  \(table.name) <- topic \(table.topic) (compacted, fully materialised on every instance)")
            }
        }

        for pipeline in config.pipelines {
            out.append("")
            out.append("pipeline \(pipeline.name) (on_error: \(pipeline.onError.rawValue)\(pipeline.onError == .deadLetter ? " -> \(config.dlqTopic)" : ""))")
            var subTopology = 0
            out.append("  sub-topology \(pipeline.name)-\(subTopology)")
            out.append("    source: \(topicList(pipeline.source.topics)) (\(keyDescription(pipeline.source)), \(timestampDescription(pipeline.source)))")
            if !pipeline.source.required.isEmpty {
                out.append("    requires: " + pipeline.source.required.map { "\($0.field): \($0.type.rawValue)" }.joined(separator: ", "))
            }
            for (index, step) in pipeline.steps.enumerated() {
                out.append("    \(index + 1). \(stepDescription(step))")
                for store in step.storeNames {
                    out.append("       store \(store) -> changelog topic \(config.changelogTopic(store: store))")
                }
                if case .rekey = step {
                    let topic = config.repartitionTopic(pipeline: pipeline.name)
                    out.append("       -> repartition topic \(topic)")
                    if let registry, Combiner.combines(pipeline, config: config, registry: registry) {
                        out.append("       combined before the repartition: each upstream task sends one partial state per key and commit, not one record per input record (defaults.combine.before.repartition)")
                    }
                    subTopology += 1
                    out.append("  sub-topology \(pipeline.name)-\(subTopology)")
                    out.append("    source: repartition topic \(topic) (key: rekeyed)")
                }
            }
            let stores = pipeline.storeNames
            out.append("  state stores:" + (stores.isEmpty ? " none" : ""))
            for store in stores {
                out.append("    \(store) (changelog topic \(config.changelogTopic(store: store)))")
            }
            let sinks = pipeline.steps.compactMap(sinkDescription)
            out.append("  sinks:" + (sinks.isEmpty ? " none" : ""))
            for sink in sinks { out.append("    \(sink)") }
        }

        out.append("")
        out.append("topics the engine uses (`run` creates every one but the inputs; `stream-engine topics` prints or creates them):")
        for t in TopicSetup.plannedTopics(config: config, inputCounts: [:]) {
            let partitions = t.partitionsFrom.map { "partitions as \($0)" } ?? (t.role == .input ? "must exist" : "partitions as the largest input")
            let cfg = t.configs.isEmpty ? "" : ", " + t.configs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
            out.append("  \(t.name) (\(t.role.rawValue), \(partitions)\(cfg))")
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// A Mermaid `flowchart LR`: topics are stadium nodes `([...])`, steps are boxes,
    /// state stores are cylinders `[(...)]` joined to their step with dotted edges, Redis
    /// sinks are hexagons. Each pipeline is a subgraph; every step has an incoming edge.
    public static func mermaid(_ config: StreamConfig) -> String {
        var ids = MermaidIds()
        var lines: [String] = ["flowchart LR"]
        var declaredTopics = Set<String>()
        var edges: [String] = []

        func topicNode(_ topic: String, note: String? = nil) -> String {
            let id = ids.id(for: "topic:" + topic, prefix: "t_", base: topic)
            if declaredTopics.insert(topic).inserted {
                let label = note.map { "\(topic)<br/>\($0)" } ?? topic
                lines.append("  \(id)([\"\(escape(label, keepBreaks: true))\"])")
            }
            return id
        }

        let dlq = config.pipelines.contains { $0.onError == .deadLetter } ? topicNode(config.dlqTopic, note: "dead letters") : nil

        for table in config.globalTables {
            let topic = topicNode(table.topic)
            let store = ids.id(for: "global:" + table.name, prefix: "g_", base: table.name)
            lines.append("  \(store)[(\"\(escape("global table \(table.name)"))\")]")
            edges.append("  \(topic) --> \(store)")
        }

        for pipeline in config.pipelines {
            let sources = pipeline.source.topics.map { topicNode($0) }
            let pid = ids.id(for: "pipeline:" + pipeline.name, prefix: "p_", base: pipeline.name)
            var body: [String] = []
            var previous: [String] = sources
            var firstStep: String?
            for (index, step) in pipeline.steps.enumerated() {
                let sid = "\(pid)_s\(index + 1)"
                let label = escape("\(index + 1). \(stepDescription(step))")
                if step.isSink, step.toSpec == nil {
                    body.append("    \(sid){{\"\(label)\"}}")
                } else {
                    body.append("    \(sid)[\"\(label)\"]")
                }
                firstStep = firstStep ?? sid
                for p in previous { edges.append("  \(p) --> \(sid)") }
                previous = [sid]
                for store in step.storeNames {
                    let stid = ids.id(for: "store:" + store, prefix: "st_", base: store)
                    body.append("    \(stid)[(\"\(escape(store))\")]")
                    edges.append("  \(sid) -.- \(stid)")
                    let changelog = topicNode(config.changelogTopic(store: store), note: "changelog")
                    edges.append("  \(stid) -.-> \(changelog)")
                }
                switch step {
                case .rekey:
                    let repartition = topicNode(config.repartitionTopic(pipeline: pipeline.name), note: "repartition")
                    edges.append("  \(sid) --> \(repartition)")
                    previous = [repartition]
                case .to(let to, _):
                    edges.append("  \(sid) --> \(topicNode(to.topic))")
                default:
                    break
                }
            }
            lines.append("  subgraph \(pid)[\"\(escape("pipeline \(pipeline.name)"))\"]")
            lines.append("    direction LR")
            lines.append(contentsOf: body)
            lines.append("  end")
            if pipeline.onError == .deadLetter, let dlq, let firstStep {
                edges.append("  \(firstStep) -. errors .-> \(dlq)")
            }
        }
        lines.append(contentsOf: edges)
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - Pieces

    static func topicList(_ topics: [String]) -> String {
        (topics.count == 1 ? "topic " : "topics ") + topics.joined(separator: ", ")
    }

    static func keyDescription(_ source: SourceSpec) -> String {
        source.keyField.map { "key: field \($0)" } ?? "key: record key"
    }

    static func timestampDescription(_ source: SourceSpec) -> String {
        source.timestampField.map { "timestamp: field \($0) as \(source.timestampFormat.rawValue)" } ?? "timestamp: record timestamp"
    }

    /// A one-line description of a step, e.g. `aggregate: aggregator top_n into store trending`.
    public static func stepDescription(_ step: StepSpec) -> String {
        switch step {
        case .filter(let predicates, _):
            return "filter: " + predicates.map(predicateDescription).joined(separator: " and ")
        case .select(let fields, _):
            return "select: " + fields.map { "\($0.name) = \(expressionDescription($0.expression))" }.joined(separator: ", ")
        case .rekey(let field, _):
            return "rekey: by field \(field)"
        case .aggregate(let a, _):
            var s = "aggregate: \(a.aggregator) into store \(a.store)"
            if let ttl = a.ttlMillis { s += ", ttl \(formatDuration(ttl))" }
            if !a.params.isEmpty { s += ", params \(JSONValue.object(a.params))" }
            return s
        case .window(let w, _):
            var s = "window: \(w.type.name)"
            switch w.type {
            case .tumbling(let size): s += " \(formatDuration(size))"
            case .hopping(let size, let advance): s += " \(formatDuration(size)) advancing \(formatDuration(advance))"
            case .session(let gap): s += " gap \(formatDuration(gap))"
            }
            if w.graceMillis > 0 { s += ", grace \(formatDuration(w.graceMillis))" }
            s += ", \(w.aggregator) into store \(w.store)"
            if !w.params.isEmpty { s += ", params \(JSONValue.object(w.params))" }
            return s
        case .process(let p, _):
            var s = "process: \(p.processor)"
            if !p.stores.isEmpty { s += " with store\(p.stores.count == 1 ? "" : "s") \(p.stores.joined(separator: ", "))" }
            if !p.params.isEmpty { s += ", params \(JSONValue.object(p.params))" }
            return s
        case .to(let t, _):
            return "to: topic \(t.topic)" + (t.keyField.map { " (key: field \($0))" } ?? "")
        case .redis(let r, _):
            return "redis: " + redisDescription(r)
        case .sql(let q, _):
            return "sql: " + SQLSinkDescription.describe(q)
        }
    }

    static func sinkDescription(_ step: StepSpec) -> String? {
        switch step {
        case .to(let t, _): return "topic \(t.topic)" + (t.keyField.map { " (key: field \($0))" } ?? "")
        case .redis(let r, _): return "redis " + redisDescription(r)
        case .sql(let q, _): return "sql " + SQLSinkDescription.describe(q)
        default: return nil
        }
    }

    static func redisDescription(_ r: RedisSinkSpec) -> String {
        var s: String
        switch r.mode {
        case .hash(let fields):
            s = "hash \(r.key.source)"
            if let fields { s += " fields " + fields.map { "\($0.redisField)=\($0.valueField)" }.joined(separator: ", ") }
        case .sortedSetMember(let member, let score):
            s = "sorted_set \(r.key.source) member \(member) score \(score)"
        case .sortedSetMembers(let members):
            s = "sorted_set \(r.key.source) members from \(members)"
        case .value(let field):
            s = "value \(r.key.source) = \(field ?? "json")"
        case .delete:
            s = "delete \(r.key.source)"
        case .commands(let field):
            s = "commands from \(field) (\(r.key.source))"
        }
        if let ttl = r.ttlMillis { s += ", ttl \(formatDuration(ttl))" }
        return s
    }

    static func predicateDescription(_ p: FieldPredicate) -> String {
        if let v = p.value { return "\(p.field) \(p.op.rawValue) \(v)" }
        return "\(p.field) \(p.op.rawValue)"
    }

    static func expressionDescription(_ e: SelectExpression) -> String {
        func operands(_ list: [SelectOperand]) -> String {
            list.map { if case .field(let f) = $0 { return f } else if case .literal(let v) = $0 { return v.description } else { return "" } }
                .joined(separator: ", ")
        }
        switch e {
        case .field(let f): return f
        case .const(let v): return v.description
        case .mul(let o): return "mul(\(operands(o)))"
        case .add(let o): return "add(\(operands(o)))"
        case .concat(let o): return "concat(\(operands(o)))"
        case .coalesce(let o): return "coalesce(\(operands(o)))"
        }
    }

    /// Milliseconds back to the file's notation (`1h30m`, `500ms`).
    static func formatDuration(_ millis: Int) -> String {
        DurationSpec(milliseconds: Int64(max(0, millis))).description
    }

    /// Makes text safe inside a quoted Mermaid label.
    static func escape(_ text: String, keepBreaks: Bool = false) -> String {
        var out = ""
        var rest = Substring(text)
        while let c = rest.first {
            if keepBreaks, rest.hasPrefix("<br/>") {
                out += "<br/>"; rest = rest.dropFirst(5); continue
            }
            switch c {
            case "\"": out += "#quot;"
            case "<": out += "#lt;"
            case ">": out += "#gt;"
            case "\n": out += " "
            default: out.append(c)
            }
            rest = rest.dropFirst()
        }
        return out
    }
}

/// Stable, collision-free Mermaid node ids made of letters, digits and `_`.
struct MermaidIds {
    private var byKey: [String: String] = [:]
    private var used: Set<String> = []

    mutating func id(for key: String, prefix: String, base: String) -> String {
        if let id = byKey[key] { return id }
        let cleaned = String(base.unicodeScalars.map { c -> Character in
            let ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
            return ok ? Character(c) : "_"
        })
        var candidate = prefix + cleaned
        var n = 2
        while used.contains(candidate) {
            candidate = prefix + cleaned + "_\(n)"
            n += 1
        }
        used.insert(candidate)
        byKey[key] = candidate
        return candidate
    }
}
