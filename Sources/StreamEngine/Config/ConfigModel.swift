import Foundation

/// The names the loader accepts for `aggregator:` and `processor:`; the runtime's
/// registry supplies them so that misspellings are caught when the file is loaded.
public struct NameRegistry: Sendable, Hashable {
    /// Registered aggregator names (used by `aggregate` and `window` steps).
    public var aggregators: Set<String>
    /// Registered custom processor names (used by `process` steps).
    public var processors: Set<String>

    /// Creates a registry from the names of the aggregators and processors.
    public init(aggregators: Set<String> = [], processors: Set<String> = []) {
        self.aggregators = aggregators
        self.processors = processors
    }
}

/// `defaults.repartition.compression.type`: the codec of the records the engine writes to its
/// repartition topics (librdkafka's topic-level `compression.type`). Changelogs and outputs keep
/// the producer's codec (zstd unless `kafka:` says otherwise).
public enum RepartitionCompression: String, Sendable, Hashable, CaseIterable {
    case none, gzip, snappy, lz4, zstd
}

/// How records are committed.
public enum ProcessingGuarantee: String, Sendable, Hashable, CaseIterable {
    /// `at_least_once`: offsets are committed after processing; duplicates are possible on failure.
    case atLeastOnce = "at_least_once"
    /// `exactly_once`: transactional produce of outputs, changelogs and offsets.
    case exactlyOnce = "exactly_once"
}

/// What happens to a record whose processing fails.
public enum ErrorPolicy: String, Sendable, Hashable, CaseIterable {
    /// `dlq`: the record is written to the dead-letter topic and processing goes on.
    case deadLetter = "dlq"
    /// `fail`: the pipeline stops with an error.
    case fail = "fail"
}

/// How a source's timestamp field is encoded.
public enum TimestampFormat: String, Sendable, Hashable, CaseIterable {
    /// An ISO 8601 / RFC 3339 date-time string.
    case iso8601 = "iso8601"
    /// Milliseconds since the Unix epoch.
    case epochMillis = "epoch_millis"
    /// Seconds since the Unix epoch.
    case epochSeconds = "epoch_seconds"
}

/// The type a source requires a field to have (`source.required`).
public enum FieldType: String, Sendable, Hashable, CaseIterable {
    /// A JSON string.
    case string
    /// Any JSON number.
    case number
    /// A JSON number with no fractional part.
    case integer
    /// `true` or `false`.
    case boolean
    /// A JSON object.
    case object
    /// A JSON array.
    case array
    /// Any value, as long as the field is present and not null.
    case any
}

/// The whole, validated contents of `topologies.yaml`.
public struct StreamConfig: Sendable {
    /// `application.id`: prefix of every engine-owned topic and the consumer group id.
    public var applicationId: String
    /// The `kafka:` map, passed to librdkafka unchanged (values stringified).
    public var kafka: [String: String]
    /// `redis.url`, if a `redis:` section is present.
    public var redisURL: String?
    /// `sql.url` (`mysql://user:password@host:port/database`), if a `sql:` section is
    /// present; `run --sql-url` replaces it. Holds a password: never log it as is.
    public var sqlURL: String?
    /// `http.listen` (`host:port`), if an `http:` section is present: the address of the
    /// instance's HTTP service (`stream-engine run --http` overrides it).
    public var httpListen: String?
    /// `defaults.processing.guarantee` (default at-least-once).
    public var processingGuarantee: ProcessingGuarantee
    /// `defaults.commit.interval.ms` (default 100).
    public var commitIntervalMs: Int
    /// `defaults.dlq.topic` (default `<application.id>-dlq`).
    public var dlqTopic: String
    /// `defaults.on_error` (default dead-letter).
    public var onError: ErrorPolicy
    /// `defaults.partitions`: partitions of input topics the embedded cluster creates (default 4).
    public var defaultPartitions: Int
    /// `global_tables`: compacted topics materialised fully on every instance.
    public var globalTables: [GlobalTableSpec]
    /// `defaults.max.task.idle.ms`: how a task with several input partitions
    /// waits for an empty one (0, the default: while the partition is not at
    /// its end; > 0: also that long when it is; -1: never).
    public var maxTaskIdleMs: Int = 0
    /// `defaults.max.drift`: how far (ms of event time) tasks that write one
    /// repartition topic may run ahead of their slowest sibling; `nil`: the
    /// default, 1 minute or the smallest window grace downstream of a rekey if smaller.
    public var maxDriftMs: Int?
    /// `defaults.num.standby.replicas`: 0 (default) or 1 and more: keep warm
    /// copies of the stores of tasks running on other instances (see
    /// `StandbyReplicas`: with librdkafka's assignors every instance keeps a copy
    /// of every store partition it does not own, whatever the number above 0).
    public var numStandbyReplicas: Int = 0
    /// `defaults.repartition.compression.type` (default `lz4`): records in a repartition topic
    /// are read once, soon after they are written, so the codec trades bytes for CPU on both
    /// sides; lz4 costs a fraction of zstd's CPU (the changelogs, kept and restored, stay zstd).
    public var repartitionCompression: RepartitionCompression = .lz4
    /// `defaults.combine.before.repartition` (default true): with `at_least_once`, a pipeline
    /// whose `rekey` feeds an aggregate with a combinable aggregator sends one partial state per
    /// key and commit through its repartition topic, not one record per input record (see
    /// `StreamTask.Combiner`); false sends every record on, so the aggregate's results change
    /// once per record.
    public var combineBeforeRepartition = true
    /// `topologies`: the pipelines, in file order.
    public var pipelines: [PipelineSpec]
    /// The file the configuration was loaded from.
    public var sourceFile: String

    /// Creates a configuration; ``ConfigLoader`` is the usual way to obtain one.
    public init(
        applicationId: String,
        kafka: [String: String] = [:],
        redisURL: String? = nil,
        processingGuarantee: ProcessingGuarantee = .atLeastOnce,
        commitIntervalMs: Int = 100,
        dlqTopic: String? = nil,
        onError: ErrorPolicy = .deadLetter,
        defaultPartitions: Int = 4,
        globalTables: [GlobalTableSpec] = [],
        pipelines: [PipelineSpec] = [],
        sourceFile: String = "topologies.yaml",
        sqlURL: String? = nil
    ) {
        self.sqlURL = sqlURL
        self.applicationId = applicationId
        self.kafka = kafka
        self.redisURL = redisURL
        self.processingGuarantee = processingGuarantee
        self.commitIntervalMs = commitIntervalMs
        self.dlqTopic = dlqTopic ?? "\(applicationId)-dlq"
        self.onError = onError
        self.defaultPartitions = defaultPartitions
        self.globalTables = globalTables
        self.pipelines = pipelines
        self.sourceFile = sourceFile
    }

    /// The alignment bound in effect (see `maxDriftMs`).
    public var effectiveMaxDriftMs: Int {
        if let maxDriftMs { return maxDriftMs }
        var drift = 60_000
        for p in pipelines {
            guard let r = p.rekeyIndex else { continue }
            for step in p.steps[(r + 1)...] {
                if case .window(let w, _) = step { drift = min(drift, w.graceMillis) }
            }
        }
        return drift
    }

    /// The changelog topic backing a state store: `<application.id>-<store>-changelog`.
    public func changelogTopic(store: String) -> String {
        "\(applicationId)-\(store)-changelog"
    }

    /// The engine-owned repartition topic of a pipeline with a `rekey` step:
    /// `<application.id>-<pipeline>-repartition`.
    public func repartitionTopic(pipeline: String) -> String {
        "\(applicationId)-\(pipeline)-repartition"
    }

    /// True when `kafka` has no `bootstrap.servers`, i.e. the engine runs an embedded cluster.
    public var usesEmbeddedCluster: Bool {
        (kafka["bootstrap.servers"] ?? "").trimmingCharacters(in: .whitespaces).isEmpty
    }

    /// Every topic a pipeline reads from, deduplicated, in file order.
    public var inputTopics: [String] {
        var seen = Set<String>()
        return pipelines.flatMap(\.source.topics).filter { seen.insert($0).inserted }
    }

    /// Every topic a `to` step writes to, deduplicated, in file order.
    public var outputTopics: [String] {
        var seen = Set<String>()
        return pipelines.flatMap { $0.steps.compactMap(\.toSpec?.topic) }.filter { seen.insert($0).inserted }
    }

    /// Every state store owned by a pipeline step (global tables excluded), in file order.
    public var storeNames: [String] {
        pipelines.flatMap(\.storeNames)
    }
}

/// A compacted topic materialised fully on every instance, looked up by processors by name.
public struct GlobalTableSpec: Sendable, Hashable {
    /// The store name processors use for lookups.
    public var name: String
    /// The compacted topic to materialise.
    public var topic: String
    /// Where the table is declared.
    public var location: SourceLocation

    /// Creates a global table spec.
    public init(name: String, topic: String, location: SourceLocation) {
        self.name = name
        self.topic = topic
        self.location = location
    }
}

/// One pipeline (`topologies[i]`): a source and an ordered list of steps.
public struct PipelineSpec: Sendable {
    /// Unique pipeline name (`[a-z0-9-]+`).
    public var name: String
    /// Where records come from.
    public var source: SourceSpec
    /// The steps, in order. Sinks (`to`, `redis`) pass records on to the following steps.
    public var steps: [StepSpec]
    /// The effective error policy: the pipeline's `on_error`, else `defaults.on_error`.
    public var onError: ErrorPolicy
    /// Where the pipeline is declared (its first key).
    public var location: SourceLocation

    /// Creates a pipeline spec.
    public init(name: String, source: SourceSpec, steps: [StepSpec], onError: ErrorPolicy, location: SourceLocation) {
        self.name = name
        self.source = source
        self.steps = steps
        self.onError = onError
        self.location = location
    }

    /// The index of the `rekey` step, if any (there is at most one).
    public var rekeyIndex: Int? {
        steps.firstIndex { if case .rekey = $0 { return true } else { return false } }
    }

    /// The stores owned by this pipeline's steps, in step order.
    public var storeNames: [String] {
        steps.flatMap(\.storeNames)
    }
}

/// Where a pipeline's records come from and how key and timestamp are taken.
public struct SourceSpec: Sendable {
    /// One or more input topics.
    public var topics: [String]
    /// The value field holding the key; nil means the Kafka record key.
    public var keyField: String?
    /// The value field holding the event time; nil means the Kafka record timestamp.
    public var timestampField: String?
    /// How `timestampField` is encoded (default ISO 8601).
    public var timestampFormat: TimestampFormat
    /// Fields every record must have, with their types, in file order.
    /// Records that do not conform are treated as processing errors.
    public var required: [(field: String, type: FieldType)]
    /// Where the `source:` map is.
    public var location: SourceLocation

    /// Creates a source spec.
    public init(
        topics: [String],
        keyField: String? = nil,
        timestampField: String? = nil,
        timestampFormat: TimestampFormat = .iso8601,
        required: [(field: String, type: FieldType)] = [],
        location: SourceLocation
    ) {
        self.topics = topics
        self.keyField = keyField
        self.timestampField = timestampField
        self.timestampFormat = timestampFormat
        self.required = required
        self.location = location
    }
}
