import StreamEngine

/// Shared inputs for the configuration tests.
enum ConfigFixtures {
    static let registry = NameRegistry(
        aggregators: ["user_purchase_stats", "top_n", "lowest_price", "count"],
        processors: ["recently_viewed", "fraud_check"])

    /// A complete, valid file using every step kind.
    static let fullYAML = """
        application.id: shop-streams
        kafka:
          linger.ms: 5
          enable.idempotence: true
        redis:
          url: ${REDIS_URL:-redis://127.0.0.1:6379/0}
        defaults:
          processing.guarantee: exactly_once
          commit.interval.ms: 250
          on_error: dlq
          partitions: 8
        global_tables:
          - name: category-popularity
            topic: shop-streams-category-popularity
        topologies:
          - name: lowest-price
            source:
              topics: [product_prices]
              key: productId
              timestamp: timestamp
              timestamp.format: epoch_millis
              required:
                productId: string
                price: number
            steps:
              - filter:
                  - { field: price, op: gt, value: 0 }
                  - { field: currency, op: in, value: [EUR, USD] }
                  - { field: deleted, op: missing }
              - select:
                  productId: productId
                  amount: { mul: [price, quantity] }
                  label: { concat: [name, { const: " - " }, brand] }
                  source: { const: feed }
                  seller: { coalesce: [sellerId, vendorId] }
              - aggregate:
                  store: lowest-prices
                  aggregator: lowest_price
                  ttl: 30d
              - to: { topic: lowest-prices-out, key: productId }
              - redis:
                  key: "product:{productId}:lowest"
                  mode: hash
                  fields: { price: amount, seller: seller }
                  ttl: 24h
          - name: purchases
            on_error: fail
            source:
              topics: purchases
            steps:
              - rekey: { field: userId }
              - aggregate:
                  store: purchases-by-user
                  aggregator: user_purchase_stats
                  params: { currency: EUR, limits: [1, 2.5], nested: { on: true } }
              - redis:
                  key: "user:{userId}:stats"
                  mode: value
                  value: json
          - name: trending
            source:
              topics: [page_views, product_views]
            steps:
              - window:
                  type: hopping
                  size: 1h
                  advance: 15m
                  grace: 5m
                  store: trending-window
                  aggregator: top_n
                  params: { n: 10 }
              - redis:
                  key: trending
                  mode: sorted_set
                  members: items
              - process:
                  processor: recently_viewed
                  stores: [recent-views]
                  params: { max_items: 100 }
              - redis:
                  key: "{key}:platform"
                  mode: sorted_set
                  member: platform
                  score: count
              - window:
                  type: session
                  gap: 30m
                  store: sessions
                  aggregator: count
              - redis:
                  key: "session:{key}"
                  mode: delete

        """

    /// Loads YAML that is expected to be valid, recording the diagnostics otherwise.
    static func load(_ yaml: String, environment: [String: String] = [:]) throws -> StreamConfig {
        try ConfigLoader.load(yaml: yaml, file: "topologies.yaml", registry: registry, environment: environment)
    }

    /// Loads YAML that is expected to be invalid and returns its diagnostics (empty if it loaded).
    static func diagnostics(_ yaml: String, environment: [String: String] = [:]) -> [ConfigDiagnostic] {
        do {
            _ = try ConfigLoader.load(yaml: yaml, file: "topologies.yaml", registry: registry, environment: environment)
            return []
        } catch {
            return error.diagnostics
        }
    }

    /// A small valid file whose single pipeline's steps are `steps` (indented by 6 spaces per line).
    static func pipeline(steps: String, source: String = "      topics: [orders]\n") -> String {
        """
        application.id: app
        topologies:
          - name: p
            source:
        \(source)    steps:
        \(steps)
        """
    }
}
