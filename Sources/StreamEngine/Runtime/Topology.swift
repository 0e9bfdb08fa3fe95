/// The part of a pipeline that one task runs: a pipeline without `rekey` is
/// one sub-topology; `rekey` splits it in two, joined by the pipeline's
/// repartition topic.
public struct SubTopology: Sendable {
    public let pipeline: PipelineSpec
    /// 0 before the repartition topic, 1 after it.
    public let index: Int
    /// Topics this sub-topology consumes.
    public let sourceTopics: [String]
    /// Whether it consumes the repartition topic (records are engine-encoded).
    public let fromRepartition: Bool
    /// Its steps; sub-topology 0 of a rekeyed pipeline ends with the `rekey`.
    public let steps: [StepSpec]
    /// Stores of its steps, plus the de-duplication store of a repartition consumer.
    public let stores: [String]
    /// Internal store remembering the last repartition record applied per upstream partition.
    public let dedupeStore: String?

    /// Whether its tasks are aligned in event time with each other (it writes
    /// a repartition topic that merges their partitions; see `InputScheduler`).
    public var alignsEventTime: Bool { !fromRepartition && pipeline.rekeyIndex != nil }

    /// `<pipeline>` or `<pipeline>.1` for the part after a rekey.
    public var id: String { index == 0 ? pipeline.name : "\(pipeline.name).\(index)" }
}

/// A pipeline compiled into sub-topologies, with the engine-owned topic names.
public struct TopologyPlan: Sendable {
    public let config: StreamConfig
    public let subTopologies: [SubTopology]

    public init(config: StreamConfig) {
        self.config = config
        var subs: [SubTopology] = []
        for p in config.pipelines {
            if let r = p.rekeyIndex {
                let before = Array(p.steps[...r])
                let after = Array(p.steps[(r + 1)...])
                subs.append(SubTopology(
                    pipeline: p, index: 0, sourceTopics: p.source.topics, fromRepartition: false,
                    steps: before, stores: before.flatMap(\.storeNames), dedupeStore: nil))
                let dedupe = "\(p.name)-dedupe"
                subs.append(SubTopology(
                    pipeline: p, index: 1, sourceTopics: [config.repartitionTopic(pipeline: p.name)], fromRepartition: true,
                    steps: after, stores: after.flatMap(\.storeNames) + [dedupe], dedupeStore: dedupe))
            } else {
                subs.append(SubTopology(
                    pipeline: p, index: 0, sourceTopics: p.source.topics, fromRepartition: false,
                    steps: p.steps, stores: p.steps.flatMap(\.storeNames), dedupeStore: nil))
            }
        }
        self.subTopologies = subs
    }

    /// Every topic the engine's consumer subscribes to.
    public var subscribedTopics: [String] {
        var seen = Set<String>()
        return subTopologies.flatMap(\.sourceTopics).filter { seen.insert($0).inserted }
    }

    /// The repartition topics.
    public var repartitionTopics: [String] {
        subTopologies.filter(\.fromRepartition).flatMap(\.sourceTopics)
    }

    /// Subscribed topics whose records' headers the engine never reads: every source
    /// topic but the repartition topics (whose progress markers, and records of earlier
    /// versions, carry the upstream position in headers; today's records carry it in a
    /// framed value, whose headers the consumer skips too). The consumer skips parsing them
    /// (`KafkaConsumer.poll(maxMessages:timeoutMs:skippingHeadersOf:skippingHeadersOfValuesStartingWith:)`).
    public var headerlessTopics: Set<String> {
        Set(subscribedTopics).subtracting(repartitionTopics)
    }

    /// Every store with its changelog topic and the sub-topology owning it.
    public var stores: [(store: String, changelog: String, sub: SubTopology)] {
        subTopologies.flatMap { sub in sub.stores.map { ($0, config.changelogTopic(store: $0), sub) } }
    }

    /// The sub-topology that owns a store.
    public func subTopology(ofStore store: String) -> SubTopology? {
        subTopologies.first { $0.stores.contains(store) }
    }
}
