import Testing

@testable import StreamEngine

/// The settings of the engine's group member that depend on the cluster it talks to.
@Suite("Consumer settings per cluster kind")
struct ConsumerSettingsTests {
    static func config(kafka: String = "") throws -> StreamConfig {
        try ConfigLoader.load(yaml: """
            application.id: settings-app
            \(kafka)
            topologies:
              - name: totals
                source: { topics: [orders], key: user }
                steps:
                  - rekey: { field: user }
                  - aggregate: { store: totals, aggregator: count }
            """, file: "settings.yaml", registry: OperatorRegistry().names, environment: [:])
    }

    static func consumer(_ config: StreamConfig, _ cluster: ClusterKind) throws -> [String: String] {
        try StreamRuntime.consumerConfig(config, plan: TopologyPlan(config: config), cluster: cluster, instanceId: nil)
    }

    /// The mock holds an empty fetch for the whole `fetch.wait.max.ms`: on it (embedded or a
    /// dev-broker) the engine waits 50 ms instead of librdkafka's 500 ms, so a repartition
    /// topic's reader sees its upstream's records soon after they are written.
    @Test("on a mock cluster an empty fetch waits 50 ms; on Kafka librdkafka's default stays")
    func fetchWaitByCluster() throws {
        let config = try Self.config()
        let embedded = try Self.consumer(config, ClusterKind(id: nil, embedded: true))
        #expect(embedded["fetch.wait.max.ms"] == "50")
        let devBroker = try Self.consumer(config, ClusterKind(id: "mockCluster1a2b3c", embedded: false))
        #expect(ClusterKind(id: "mockCluster1a2b3c", embedded: false).isMock)
        #expect(devBroker["fetch.wait.max.ms"] == "50")
        let kafka = try Self.consumer(config, ClusterKind(id: "q1Sh-9_ISia_zwGINzRvyQ", embedded: false))
        #expect(kafka["fetch.wait.max.ms"] == nil)
    }

    @Test("the file's kafka: section wins over the mock's default")
    func configuredFetchWaitWins() throws {
        let config = try Self.config(kafka: "kafka:\n  fetch.wait.max.ms: \"5\"")
        let embedded = try Self.consumer(config, ClusterKind(id: nil, embedded: true))
        #expect(embedded["fetch.wait.max.ms"] == "5")
    }
}
