/// A custom, possibly stateful, step registered by name (`process:` in YAML).
///
/// One instance per task, used only from that task's actor: it may keep
/// caches, but durable state belongs in the stores it declares (they are
/// changelogged and restored). It must be deterministic given its input and stores.
public protocol Processor {
    /// Handles one record: read and write stores, forward zero or more records
    /// downstream, or throw a `RecordError` to dead-letter the record.
    mutating func process(_ record: StreamRecord, context: ProcessorContext) throws(RecordError)

    /// Called before every commit of the task (every `commit.interval.ms`,
    /// whether records arrived or not): a processor may forward records that
    /// do not answer an input record, e.g. results to recompute after a global
    /// table changed. Records forwarded here carry no replay position. Returns
    /// whether it has more such work pending (it is called again at the next
    /// commit; `--stop-at-end` waits until no processor has work pending).
    mutating func punctuate(context: ProcessorContext) -> Bool
}

extension Processor {
    /// No periodic work.
    public mutating func punctuate(context: ProcessorContext) -> Bool { false }
}

/// Builds a processor for one task from its YAML `params`.
public typealias ProcessorFactory = @Sendable (JSONObject) throws -> any Processor

/// What a processor sees of its task.
public final class ProcessorContext {
    private let stores: [String: KeyValueStore]
    private let globals: GlobalTables
    /// Records forwarded by the current `process` call (the task clears it before each call).
    public internal(set) var forwarded: [StreamRecord] = []
    /// The task's stream time (the largest event time seen), epoch ms.
    public internal(set) var streamTime: Int64 = .min
    /// The task's partition.
    public let partition: Int32

    /// A context for a processor outside a task, for unit tests of operators: the stores
    /// the step declares, global tables (fill them with `GlobalTables.apply`), a partition
    /// and a stream time. What the processor forwards collects in ``forwarded``.
    public init(stores: [String: KeyValueStore] = [:], globals: GlobalTables = GlobalTables(), partition: Int32 = 0, streamTime: Int64 = .min) {
        self.stores = stores
        self.globals = globals
        self.partition = partition
        self.streamTime = streamTime
    }

    /// Forgets what was forwarded, as the task does before each record.
    public func clearForwarded() {
        forwarded.removeAll(keepingCapacity: true)
    }

    /// A store the step declared in `stores:`.
    public func store(_ name: String) -> KeyValueStore {
        guard let s = stores[name] else {
            preconditionFailure("store '\(name)' is not declared by this process step (declared: \(stores.keys.sorted()))")
        }
        return s
    }

    /// Sends a record to the next step.
    public func forward(_ record: StreamRecord) {
        forwarded.append(record)
    }

    /// A value of a global table (a compacted topic materialised on every instance).
    public func globalLookup(_ table: String, _ key: String) -> JSONValue? {
        globals.lookup(table, key)
    }

    /// Keys of a global table that changed after change number `sequence`
    /// (0 at first), and the change number to pass next time.
    public func globalChanges(_ table: String, since sequence: UInt64) -> (keys: [String], sequence: UInt64) {
        globals.changedKeys(table, since: sequence)
    }
}

/// The aggregators and processors available to `topologies.yaml`, by name.
public struct OperatorRegistry: Sendable {
    public private(set) var aggregators: [String: AggregatorFactory]
    public private(set) var processors: [String: ProcessorFactory]

    /// The aggregator registered as `name`, built from its YAML `params`.
    func makeAggregator(_ name: String, params: JSONObject) throws -> any Aggregator {
        guard let factory = aggregators[name] else { throw OperatorConfigError("unknown aggregator \(name)") }
        return try factory(params)
    }

    /// The engine's built-in aggregators and no processors.
    public init() {
        aggregators = BuiltinAggregators.factories
        processors = [:]
    }

    public mutating func register(aggregator name: String, _ factory: @escaping AggregatorFactory) {
        aggregators[name] = factory
    }

    public mutating func register(processor name: String, _ factory: @escaping ProcessorFactory) {
        processors[name] = factory
    }

    /// The names, for validating YAML.
    public var names: NameRegistry {
        NameRegistry(aggregators: Set(aggregators.keys), processors: Set(processors.keys))
    }
}
