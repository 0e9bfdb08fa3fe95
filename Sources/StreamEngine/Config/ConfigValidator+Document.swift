import Foundation

// The document: top-level keys, defaults, global tables and engine-owned topics.

extension ConfigValidator {
    // MARK: - Document

    static let topLevelKeys = ["application.id", "kafka", "redis", "sql", "http", "defaults", "global_tables", "topologies"]
    static let defaultsKeys = ["processing.guarantee", "commit.interval.ms", "dlq.topic", "on_error", "partitions", "max.task.idle.ms", "max.drift", "num.standby.replicas", "repartition.compression.type", "combine.before.repartition"]

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

        let sqlURL = optional(top, "sql", nullIsAbsent: true).flatMap(sqlSection)
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
        var maxTaskIdle = 0
        var maxDrift: Int?
        var standbys = 0
        var repartitionCompression = RepartitionCompression.lz4
        var combine = true
        if let node = optional(top, "defaults", nullIsAbsent: true),
           let m = map(node, "'defaults'", expected: "a map with any of \(ConfigSuggest.list(Self.defaultsKeys))") {
            checkKeys(m, allowed: Self.defaultsKeys, in: "defaults")
            if let v = m["processing.guarantee"], let g = choice(v, "processing.guarantee", ProcessingGuarantee.self) { guarantee = g }
            if let v = m["commit.interval.ms"], let i = positiveInt(v, "commit.interval.ms") { commitInterval = i }
            if let v = m["dlq.topic"] { dlqTopic = name(v, "dlq.topic", .topic) }
            if let v = m["on_error"], let p = choice(v, "on_error", ErrorPolicy.self) { onError = p }
            if let v = m["partitions"], let i = positiveInt(v, "partitions") { partitions = i }
            if let v = m["max.task.idle.ms"] {
                if let s = v.scalar, let i = Int(s.text.trimmingCharacters(in: .whitespaces)), i >= -1 { maxTaskIdle = i } else {
                    report(v.location, "invalid value \(v.shortDescription) for 'max.task.idle.ms'; expected -1 (never wait), 0 (wait while a partition has unfetched records) or a positive number of milliseconds")
                }
            }
            if let v = m["max.drift"], let d = duration(v, "max.drift", allowZero: true) { maxDrift = d }
            if let v = m["repartition.compression.type"], let c = choice(v, "repartition.compression.type", RepartitionCompression.self) {
                repartitionCompression = c
            }
            if let v = m["combine.before.repartition"] {
                switch v.scalar?.text.trimmingCharacters(in: .whitespaces) {
                case "true": combine = true
                case "false": combine = false
                default: report(v.location, "invalid value \(v.shortDescription) for 'combine.before.repartition'; expected true or false")
                }
            }
            if let v = m["num.standby.replicas"] {
                if let s = v.scalar, let i = Int(s.text.trimmingCharacters(in: .whitespaces)), i >= 0 { standbys = i } else {
                    report(v.location, "invalid value \(v.shortDescription) for 'num.standby.replicas'; expected 0 (no standbys) or a positive number")
                }
            }
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
            pipelines: pipelines, sourceFile: file, sqlURL: sqlURL)
        config.maxTaskIdleMs = maxTaskIdle
        config.maxDriftMs = maxDrift
        config.numStandbyReplicas = standbys
        config.repartitionCompression = repartitionCompression
        config.combineBeforeRepartition = combine
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
}
