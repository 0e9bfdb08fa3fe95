import KafkaClient
import Logging

/// Where a task's records go (outputs, repartition, dead letters, changelogs): the Kafka
/// producer in the runtime, memory in `StreamEngineTesting`'s `TopologyTestDriver`.
package protocol RecordCollector: Sendable {
    /// Takes a record without waiting; false when the destination is full
    /// (the task keeps it and the ones after it, and sends them with `send`).
    func trySend(_ record: ProducerRecord) throws(KafkaError) -> Bool
    /// Takes a record, suspending while the destination is full (back-pressure).
    func send(_ record: ProducerRecord) async throws
}

extension KafkaProducer: RecordCollector {}

/// What every task shares: configuration, where records go and lookups.
package struct TaskEnvironment: Sendable {
    let config: StreamConfig
    let registry: OperatorRegistry
    let collector: any RecordCollector
    private let kafkaProducer: KafkaProducer?
    let globals: GlobalTables
    let logger: Logger
    let stateDir: String

    /// The runtime's environment: records go to `producer`.
    init(config: StreamConfig, registry: OperatorRegistry, producer: KafkaProducer, globals: GlobalTables, logger: Logger, stateDir: String) {
        self.init(config: config, registry: registry, collector: producer, kafkaProducer: producer, globals: globals, logger: logger, stateDir: stateDir)
    }

    /// An environment without Kafka (the test driver): records go to `collector`.
    package init(config: StreamConfig, registry: OperatorRegistry, collector: any RecordCollector, globals: GlobalTables, logger: Logger, stateDir: String) {
        self.init(config: config, registry: registry, collector: collector, kafkaProducer: nil, globals: globals, logger: logger, stateDir: stateDir)
    }

    private init(config: StreamConfig, registry: OperatorRegistry, collector: any RecordCollector, kafkaProducer: KafkaProducer?,
                 globals: GlobalTables, logger: Logger, stateDir: String) {
        self.config = config
        self.registry = registry
        self.collector = collector
        self.kafkaProducer = kafkaProducer
        self.globals = globals
        self.logger = logger
        self.stateDir = stateDir
    }

    /// The Kafka producer, for the task manager's flushes and transactions (the runtime's
    /// environment always has one; the test driver has no task manager).
    var producer: KafkaProducer {
        guard let kafkaProducer else { preconditionFailure("this task environment has no Kafka producer") }
        return kafkaProducer
    }

    /// Column conversions of the `sql` steps, resolved against the database at start.
    var sqlKinds: SQLColumnKinds? = nil

    /// Partition count of the source and repartition topics (repartition readers merge
    /// one queue per upstream task; upstream tasks send progress markers to every partition).
    package var partitionCounts: [String: Int] = [:]

    /// Whether tasks may fold the records bound for a repartition topic into partial states
    /// (`Combiner`): the runtime's choice; the test driver sends every record on at once.
    package var combinesBeforeRepartition = false
}
