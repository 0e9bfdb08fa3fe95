/// A sub-topology's steps made into what a task runs: stores, aggregators, processors and sinks.
extension StreamTask {
    enum CompiledStep {
        case filter([FieldPredicate])
        case select([SelectField])
        case rekey(field: FieldKey, topic: String)
        case aggregate(store: KeyValueStore, fold: AggregateFold, ttl: Int64?)
        case window(WindowOperator)
        case process(ProcessorBox, ProcessorContext)
        case to(topic: String, keyField: String?)
        case redis(RedisSinkStep)
        case sql(SQLSinkStep)
    }

    final class ProcessorBox {
        var processor: any Processor
        init(_ p: any Processor) { processor = p }
    }

    static func compile(sub: SubTopology, stores: [String: KeyValueStore], env: TaskEnvironment, partition: Int32) throws -> [CompiledStep] {
        try sub.steps.map { step -> CompiledStep in
            switch step {
            case .filter(let p, _): return .filter(p)
            case .select(let f, _): return .select(f)
            case .rekey(let field, _): return .rekey(field: FieldKey(field), topic: env.config.repartitionTopic(pipeline: sub.pipeline.name))
            case .aggregate(let a, _):
                return .aggregate(
                    store: stores[a.store]!, fold: .of(try env.registry.makeAggregator(a.aggregator, params: a.params)), ttl: a.ttlMillis.map(Int64.init))
            case .window(let w, _):
                return .window(WindowOperator(spec: w, store: stores[w.store]!, aggregator: try env.registry.makeAggregator(w.aggregator, params: w.params)))
            case .process(let p, _):
                guard let factory = env.registry.processors[p.processor] else { throw OperatorConfigError("unknown processor \(p.processor)") }
                var own: [String: KeyValueStore] = [:]
                for s in p.stores { own[s] = stores[s] }
                return .process(ProcessorBox(try factory(p.params)), ProcessorContext(stores: own, globals: env.globals, partition: partition))
            case .to(let t, _): return .to(topic: t.topic, keyField: t.keyField)
            case .redis(let r, _): return .redis(RedisSinkStep(spec: r))
            case .sql(let q, _):
                let index = env.config.sqlSinkIndex(of: q) ?? 0
                return .sql(SQLSinkStep(index: index, spec: q, kinds: env.sqlKinds?.bySink[index]))
            }
        }
    }
}
