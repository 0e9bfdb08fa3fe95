// The steps of a pipeline as topologies.yaml declares them (validated, not yet compiled).

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
