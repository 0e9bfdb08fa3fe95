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

/// How records are committed.
/// `defaults.repartition.compression.type`: the codec of the records the engine writes to its
/// repartition topics (librdkafka's topic-level `compression.type`). Changelogs and outputs keep
/// the producer's codec (zstd unless `kafka:` says otherwise).
public enum RepartitionCompression: String, Sendable, Hashable, CaseIterable {
    case none, gzip, snappy, lz4, zstd
}

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

/// One step of a pipeline. Every case carries the location of its step-kind key.
public enum StepSpec: Sendable {
    /// `filter`: keep a record only when every predicate holds.
    case filter([FieldPredicate], location: SourceLocation)
    /// `select`: replace the value with an object built from these fields, in order.
    case select([SelectField], location: SourceLocation)
    /// `rekey`: take the key from a field and repartition through the pipeline's repartition topic.
    case rekey(field: String, location: SourceLocation)
    /// `aggregate`: keyed aggregation into a state store.
    case aggregate(AggregateSpec, location: SourceLocation)
    /// `window`: windowed aggregation into a state store.
    case window(WindowSpec, location: SourceLocation)
    /// `process`: a registered custom processor.
    case process(ProcessSpec, location: SourceLocation)
    /// `to`: produce the record to a topic (records continue to the next step).
    case to(ToSpec, location: SourceLocation)
    /// `redis`: write the record to Redis (records continue to the next step).
    case redis(RedisSinkSpec, location: SourceLocation)
    /// `sql`: write the record as a row of a MySQL/MariaDB table (records continue to the next step).
    case sql(SQLSinkSpec, location: SourceLocation)

    /// All step kinds, as written in the file, in canonical order.
    public static let kindNames = ["filter", "select", "rekey", "aggregate", "window", "process", "to", "redis", "sql"]

    /// Where the step is declared.
    public var location: SourceLocation {
        switch self {
        case .filter(_, let l), .select(_, let l), .rekey(_, let l), .aggregate(_, let l),
             .window(_, let l), .process(_, let l), .to(_, let l), .redis(_, let l), .sql(_, let l):
            return l
        }
    }

    /// The step kind as written in the file (`filter`, `select`, ...).
    public var kindName: String {
        switch self {
        case .filter: return "filter"
        case .select: return "select"
        case .rekey: return "rekey"
        case .aggregate: return "aggregate"
        case .window: return "window"
        case .process: return "process"
        case .to: return "to"
        case .redis: return "redis"
        case .sql: return "sql"
        }
    }

    /// The state stores this step owns (empty for stateless steps).
    public var storeNames: [String] {
        switch self {
        case .aggregate(let a, _): return [a.store]
        case .window(let w, _): return [w.store]
        case .process(let p, _): return p.stores
        default: return []
        }
    }

    /// Whether the step keeps state (owns at least one store).
    public var isStateful: Bool { !storeNames.isEmpty }

    /// Whether the step writes records out of the engine (`to`, `redis` or `sql`).
    public var isSink: Bool {
        switch self {
        case .to, .redis, .sql: return true
        default: return false
        }
    }

    /// The `to` spec, if this is a `to` step.
    public var toSpec: ToSpec? {
        if case .to(let t, _) = self { return t }
        return nil
    }
}

/// Comparison operators of `filter` conditions.
public enum PredicateOp: String, Sendable, Hashable, CaseIterable {
    /// Equal.
    case eq
    /// Not equal.
    case ne
    /// Greater than.
    case gt
    /// Greater than or equal.
    case gte
    /// Less than.
    case lt
    /// Less than or equal.
    case lte
    /// The field's value is one of a list.
    case `in` = "in"
    /// The field's value is none of a list.
    case notIn = "not_in"
    /// The field is present and not null (takes no value).
    case exists
    /// The field is absent or null (takes no value).
    case missing

    /// Whether the operator takes a `value`.
    public var takesValue: Bool { self != .exists && self != .missing }
}

/// One `filter` condition: `{ field, op, value }`.
public struct FieldPredicate: Sendable, Hashable {
    /// The value field tested.
    public var field: String
    /// The comparison.
    public var op: PredicateOp
    /// The operand: nil for `exists`/`missing`, an `.array` for `in`/`not_in`, a scalar otherwise.
    public var value: JSONValue?
    /// Where the condition is.
    public var location: SourceLocation

    /// Creates a predicate.
    public init(field: String, op: PredicateOp, value: JSONValue?, location: SourceLocation) {
        self.field = field
        self.op = op
        self.value = value
        self.location = location
    }
}

/// An operand of a `select` expression (`mul`, `add`, `concat`, `coalesce`).
///
/// A string is a field name; a number is a numeric literal; `{ const: x }` is a literal of any scalar type
/// (the way to put a literal string into `concat`).
public enum SelectOperand: Sendable, Hashable {
    /// The value of a field of the input record.
    case field(String)
    /// A literal value.
    case literal(JSONValue)
}

/// The expression computing one output field of a `select` step.
public enum SelectExpression: Sendable, Hashable {
    /// Copy a field of the input record (`out: in`).
    case field(String)
    /// A literal (`{ const: x }`).
    case const(JSONValue)
    /// The product of the operands (numbers or numeric fields), at least two.
    case mul([SelectOperand])
    /// The sum of the operands (numbers or numeric fields), at least two.
    case add([SelectOperand])
    /// The operands stringified and joined, at least one.
    case concat([SelectOperand])
    /// The first operand that is present and not null, at least one.
    case coalesce([SelectOperand])

    /// The operator names accepted in a map expression.
    public static let operatorNames = ["const", "mul", "add", "concat", "coalesce"]
}

/// One output field of a `select` step.
public struct SelectField: Sendable, Hashable {
    /// The output field name.
    public var name: String
    /// How it is computed.
    public var expression: SelectExpression
    /// Where it is declared.
    public var location: SourceLocation

    /// Creates a select field.
    public init(name: String, expression: SelectExpression, location: SourceLocation) {
        self.name = name
        self.expression = expression
        self.location = location
    }
}

/// An `aggregate` step: a keyed aggregation into a state store.
public struct AggregateSpec: Sendable, Hashable {
    /// The state store (changelog `<application.id>-<store>-changelog`).
    public var store: String
    /// The registered aggregator name.
    public var aggregator: String
    /// Free-form parameters passed to the aggregator.
    public var params: JSONObject
    /// Key time-to-live in event time, in milliseconds, if set.
    public var ttlMillis: Int?

    /// Creates an aggregate spec.
    public init(store: String, aggregator: String, params: JSONObject = [:], ttlMillis: Int? = nil) {
        self.store = store
        self.aggregator = aggregator
        self.params = params
        self.ttlMillis = ttlMillis
    }
}

/// The kind of window and its sizes, in milliseconds.
public enum WindowType: Sendable, Hashable {
    /// Fixed, non-overlapping windows of `sizeMillis`.
    case tumbling(sizeMillis: Int)
    /// Windows of `sizeMillis` starting every `advanceMillis` (0 < advance <= size).
    case hopping(sizeMillis: Int, advanceMillis: Int)
    /// Per-key sessions closed after `gapMillis` of inactivity.
    case session(gapMillis: Int)

    /// The type as written in the file.
    public var name: String {
        switch self {
        case .tumbling: return "tumbling"
        case .hopping: return "hopping"
        case .session: return "session"
        }
    }
}

/// A `window` step: a windowed aggregation into a state store.
public struct WindowSpec: Sendable, Hashable {
    /// Window kind and sizes.
    public var type: WindowType
    /// How long after a window's end late records are still accepted, in milliseconds (default 0).
    public var graceMillis: Int
    /// The state store (changelog `<application.id>-<store>-changelog`).
    public var store: String
    /// The registered aggregator name.
    public var aggregator: String
    /// Free-form parameters passed to the aggregator.
    public var params: JSONObject
    /// `close_idle_after`: when no record arrived for this long (wall clock),
    /// event time moves on with the wall clock and due windows close; `nil`: off.
    public var closeIdleAfterMillis: Int?

    /// Creates a window spec.
    public init(type: WindowType, graceMillis: Int = 0, store: String, aggregator: String, params: JSONObject = [:], closeIdleAfterMillis: Int? = nil) {
        self.closeIdleAfterMillis = closeIdleAfterMillis
        self.type = type
        self.graceMillis = graceMillis
        self.store = store
        self.aggregator = aggregator
        self.params = params
    }
}

/// A `process` step: a registered custom processor.
public struct ProcessSpec: Sendable, Hashable {
    /// The registered processor name.
    public var processor: String
    /// The state stores it owns (each gets a changelog topic).
    public var stores: [String]
    /// Free-form parameters passed to the processor.
    public var params: JSONObject

    /// Creates a process spec.
    public init(processor: String, stores: [String] = [], params: JSONObject = [:]) {
        self.processor = processor
        self.stores = stores
        self.params = params
    }
}

/// A `to` step: produce records to a topic.
public struct ToSpec: Sendable, Hashable {
    /// The output topic.
    public var topic: String
    /// The value field used as the output key; nil keeps the current record key.
    public var keyField: String?

    /// Creates a to spec.
    public init(topic: String, keyField: String? = nil) {
        self.topic = topic
        self.keyField = keyField
    }
}

/// A `redis` hash field mapping: `redisField: valueField`.
public struct RedisFieldMapping: Sendable, Hashable {
    /// The field name in the Redis hash.
    public var redisField: String
    /// The record value field written to it.
    public var valueField: String

    /// Creates a mapping.
    public init(redisField: String, valueField: String) {
        self.redisField = redisField
        self.valueField = valueField
    }
}

/// What a `redis` sink writes.
public enum RedisMode: Sendable, Hashable {
    /// `HSET key ...`: `fields` maps hash fields to value fields; nil means all top-level fields.
    case hash(fields: [RedisFieldMapping]?)
    /// `ZADD key score member`: one member from `memberField`, scored by `scoreField`.
    case sortedSetMember(memberField: String, scoreField: String)
    /// Replace the whole sorted set with the object (member -> score) held in `membersField`.
    case sortedSetMembers(membersField: String)
    /// `SET key value`: the given field, or the whole record as JSON when `field` is nil (`value: json`).
    case value(field: String?)
    /// `DEL key`.
    case delete
    /// The commands listed in `field` (an array of arrays of strings), run as
    /// they are in the task's atomic commit. Besides Redis commands the engine
    /// provides `ZREMIFLE key score member` (remove the member only if its
    /// score is at most `score`), `ZADDIFNEWER key score member guardKey` (add
    /// only if `score` is above the number stored at `guardKey`, or there is none)
    /// and `SETMAX key value ttlMillis` (keep the larger number, set the TTL).
    case commands(field: String)

    /// The mode as written in the file.
    public var name: String {
        switch self {
        case .hash: return "hash"
        case .sortedSetMember, .sortedSetMembers: return "sorted_set"
        case .value: return "value"
        case .delete: return "delete"
        case .commands: return "commands"
        }
    }
}

/// A `redis` step: write each record to Redis.
public struct RedisSinkSpec: Sendable, Hashable {
    /// The Redis key, rendered per record.
    public var key: KeyTemplate
    /// What is written.
    public var mode: RedisMode
    /// Key expiry in milliseconds, if set.
    public var ttlMillis: Int?

    /// Creates a Redis sink spec.
    public init(key: KeyTemplate, mode: RedisMode, ttlMillis: Int? = nil) {
        self.key = key
        self.mode = mode
        self.ttlMillis = ttlMillis
    }
}
