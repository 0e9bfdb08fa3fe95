import Foundation
import Testing
import StreamEngine

@Suite("ConfigLoader: valid files")
struct ConfigLoaderValidTests {
    @Test func fullFileParsesIntoSpecs() throws {
        let config = try ConfigFixtures.load(ConfigFixtures.fullYAML)
        #expect(config.applicationId == "shop-streams")
        #expect(config.kafka == ["linger.ms": "5", "enable.idempotence": "true"])
        #expect(config.usesEmbeddedCluster)
        #expect(config.redisURL == "redis://127.0.0.1:6379/0")
        #expect(config.processingGuarantee == .exactlyOnce)
        #expect(config.commitIntervalMs == 250)
        #expect(config.dlqTopic == "shop-streams-dlq")
        #expect(config.onError == .deadLetter)
        #expect(config.defaultPartitions == 8)
        #expect(config.sourceFile == "topologies.yaml")
        #expect(config.globalTables.map(\.name) == ["category-popularity"])
        #expect(config.globalTables.first?.topic == "shop-streams-category-popularity")
        #expect(config.globalTables.first?.location.line == 13)
        #expect(config.pipelines.map(\.name) == ["lowest-price", "purchases", "trending"])
        #expect(config.storeNames == ["lowest-prices", "purchases-by-user", "trending-window", "recent-views", "sessions"])
        #expect(config.inputTopics == ["product_prices", "purchases", "page_views", "product_views"])
        #expect(config.outputTopics == ["lowest-prices-out"])
        #expect(config.changelogTopic(store: "lowest-prices") == "shop-streams-lowest-prices-changelog")
        #expect(config.repartitionTopic(pipeline: "purchases") == "shop-streams-purchases-repartition")

        // Pipeline 1: source and stateless steps.
        let p1 = config.pipelines[0]
        #expect(p1.location.line == 16 && p1.location.column == 5)
        #expect(p1.onError == .deadLetter)
        #expect(p1.source.topics == ["product_prices"])
        #expect(p1.source.keyField == "productId")
        #expect(p1.source.timestampField == "timestamp")
        #expect(p1.source.timestampFormat == .epochMillis)
        #expect(p1.source.required.map(\.field) == ["productId", "price"])
        #expect(p1.source.required.map(\.type) == [.string, .number])
        #expect(p1.steps.map(\.kindName) == ["filter", "select", "aggregate", "to", "redis"])
        #expect(p1.rekeyIndex == nil)

        guard case .filter(let predicates, let filterLocation) = p1.steps[0] else {
            Issue.record("expected a filter step"); return
        }
        #expect(filterLocation.line == 26 && filterLocation.column == 9)
        #expect(predicates == [
            FieldPredicate(field: "price", op: .gt, value: .number(0), location: predicates[0].location),
            FieldPredicate(field: "currency", op: .in, value: .array([.string("EUR"), .string("USD")]), location: predicates[1].location),
            FieldPredicate(field: "deleted", op: .missing, value: nil, location: predicates[2].location),
        ])

        guard case .select(let fields, _) = p1.steps[1] else { Issue.record("expected select"); return }
        #expect(fields.map(\.name) == ["productId", "amount", "label", "source", "seller"])
        #expect(fields.map(\.expression) == [
            .field("productId"),
            .mul([.field("price"), .field("quantity")]),
            .concat([.field("name"), .literal(.string(" - ")), .field("brand")]),
            .const(.string("feed")),
            .coalesce([.field("sellerId"), .field("vendorId")]),
        ])

        guard case .aggregate(let agg, _) = p1.steps[2] else { Issue.record("expected aggregate"); return }
        #expect(agg == AggregateSpec(store: "lowest-prices", aggregator: "lowest_price", params: [:], ttlMillis: 30 * 86_400_000))

        guard case .to(let to, _) = p1.steps[3] else { Issue.record("expected to"); return }
        #expect(to == ToSpec(topic: "lowest-prices-out", keyField: "productId"))

        guard case .redis(let redis, _) = p1.steps[4] else { Issue.record("expected redis"); return }
        #expect(redis.key.parts == [.literal("product:"), .field("productId"), .literal(":lowest")])
        #expect(redis.mode == .hash(fields: [
            RedisFieldMapping(redisField: "price", valueField: "amount"),
            RedisFieldMapping(redisField: "seller", valueField: "seller"),
        ]))
        #expect(redis.ttlMillis == 86_400_000)

        // Pipeline 2: rekey, params, pipeline-level on_error.
        let p2 = config.pipelines[1]
        #expect(p2.onError == .fail)
        #expect(p2.source.topics == ["purchases"])
        #expect(p2.source.keyField == nil && p2.source.timestampField == nil)
        #expect(p2.source.timestampFormat == .iso8601)
        #expect(p2.rekeyIndex == 0)
        guard case .rekey(let rekeyField, _) = p2.steps[0] else { Issue.record("expected rekey"); return }
        #expect(rekeyField == "userId")
        guard case .aggregate(let agg2, _) = p2.steps[1] else { Issue.record("expected aggregate"); return }
        #expect(agg2.params == [
            "currency": .string("EUR"),
            "limits": .array([.number(1), .number(2.5)]),
            "nested": .object(["on": .bool(true)]),
        ])
        guard case .redis(let valueSink, _) = p2.steps[2] else { Issue.record("expected redis"); return }
        #expect(valueSink.mode == .value(field: nil))

        // Pipeline 3: windows, process, sorted sets, delete.
        let p3 = config.pipelines[2]
        #expect(p3.source.topics == ["page_views", "product_views"])
        guard case .window(let hopping, _) = p3.steps[0] else { Issue.record("expected window"); return }
        #expect(hopping == WindowSpec(type: .hopping(sizeMillis: 3_600_000, advanceMillis: 900_000), graceMillis: 300_000,
                                      store: "trending-window", aggregator: "top_n", params: ["n": .number(10)]))
        guard case .redis(let members, _) = p3.steps[1] else { Issue.record("expected redis"); return }
        #expect(members.mode == .sortedSetMembers(membersField: "items"))
        guard case .process(let process, _) = p3.steps[2] else { Issue.record("expected process"); return }
        #expect(process == ProcessSpec(processor: "recently_viewed", stores: ["recent-views"], params: ["max_items": .number(100)]))
        guard case .redis(let member, _) = p3.steps[3] else { Issue.record("expected redis"); return }
        #expect(member.mode == .sortedSetMember(memberField: "platform", scoreField: "count"))
        #expect(member.key.parts == [.key, .literal(":platform")])
        guard case .window(let session, _) = p3.steps[4] else { Issue.record("expected window"); return }
        #expect(session.type == .session(gapMillis: 1_800_000))
        #expect(session.graceMillis == 0)
        guard case .redis(let delete, _) = p3.steps[5] else { Issue.record("expected redis"); return }
        #expect(delete.mode == .delete)
    }

    @Test func minimalFileUsesDefaults() throws {
        let config = try ConfigFixtures.load("""
            application.id: app
            kafka:
              bootstrap.servers: localhost:9092
            topologies:
              - name: p
                source: { topics: orders }
                steps:
                  - to: { topic: out }
            """)
        #expect(config.processingGuarantee == .atLeastOnce)
        #expect(config.commitIntervalMs == 100)
        #expect(config.dlqTopic == "app-dlq")
        #expect(config.onError == .deadLetter)
        #expect(config.defaultPartitions == 4)
        #expect(config.repartitionCompression == .lz4)
        #expect(config.redisURL == nil)
        #expect(config.globalTables.isEmpty)
        #expect(!config.usesEmbeddedCluster)
        #expect(config.pipelines[0].source.topics == ["orders"])
    }

    @Test func loadsFromPath() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("config-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("topologies.yaml").path
        try ConfigFixtures.fullYAML.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(path: path, registry: ConfigFixtures.registry, environment: [:])
        #expect(config.sourceFile == path)
        #expect(config.pipelines.count == 3)

        let missing = dir.appendingPathComponent("nope.yaml").path
        #expect(throws: ConfigErrors.self) {
            try ConfigLoader.load(path: missing, registry: ConfigFixtures.registry, environment: [:])
        }
    }
}

@Suite("ConfigLoader: diagnostics")
struct ConfigLoaderDiagnosticTests {
    @Test func misspeltStepSuggestsAggregate() {
        let yaml = """
            application.id: app
            topologies:
              - name: p
                source:
                  topics: [orders]
                steps:
                  - agregate:
                      store: s
                      aggregator: count
            """
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        #expect(diagnostics.count == 1)
        let d = diagnostics.first
        #expect(d?.line == 7)
        #expect(d?.column == 9)
        #expect(d?.message == "unknown step 'agregate'; expected one of filter, select, rekey, aggregate, window, process, to, redis, sql (did you mean 'aggregate'?)")
        #expect(d?.description == "topologies.yaml:7:9: error: unknown step 'agregate'; expected one of filter, select, rekey, aggregate, window, process, to, redis, sql (did you mean 'aggregate'?)")
    }

    @Test func unknownKeySuggestsTopics() {
        let yaml = """
            application.id: app
            topologies:
              - name: p
                source:
                  topcs: [orders]
                steps:
                  - to: { topic: out }
            """
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        let unknown = diagnostics.first { $0.message.contains("unknown key 'topcs'") }
        #expect(unknown?.line == 5)
        #expect(unknown?.column == 7)
        #expect(unknown?.message.contains("did you mean 'topics'?") == true)
        #expect(unknown?.message.contains("expected one of topics, key, timestamp, timestamp.format, required") == true)
        // The missing `topics` is reported too, at the source map.
        #expect(diagnostics.contains { $0.message.contains("missing required key 'topics'") && $0.line == 5 })
    }

    @Test func repartitionCompressionIsOneOfTheCodecs() throws {
        func yaml(_ codec: String) -> String {
            """
            application.id: app
            defaults:
              repartition.compression.type: \(codec)
            topologies:
              - name: p
                source: { topics: [orders] }
                steps: [ { to: { topic: out } } ]
            """
        }
        #expect(try ConfigFixtures.load(yaml("none")).repartitionCompression == RepartitionCompression.none)
        #expect(try ConfigFixtures.load(yaml("zstd")).repartitionCompression == .zstd)
        let diagnostics = ConfigFixtures.diagnostics(yaml("lz5"))
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.line == 3)
        #expect(diagnostics.first?.message.contains("'repartition.compression.type'") == true)
        #expect(diagnostics.first?.message.contains("lz4") == true)
    }

    @Test func wrongTypeForCommitInterval() {
        let yaml = """
            application.id: app
            defaults:
              commit.interval.ms: fast
            topologies:
              - name: p
                source: { topics: [orders] }
                steps: [ { to: { topic: out } } ]
            """
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.line == 3)
        #expect(diagnostics.first?.column == 23)
        #expect(diagnostics.first?.message.contains("expected an integer") == true)
        #expect(diagnostics.first?.message.contains("'fast'") == true)
    }

    @Test func missingSourceReportedAtPipeline() {
        let yaml = """
            application.id: app
            topologies:
              - name: lowest-price
                steps:
                  - to: { topic: out }
            """
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        #expect(diagnostics.count == 1)
        let d = diagnostics.first
        #expect(d?.line == 3)
        #expect(d?.column == 5)
        #expect(d?.message.contains("'source'") == true)
        #expect(d?.message.contains("required") == true)
        #expect(d?.message.contains("pipeline 'lowest-price'") == true)
    }

    @Test func unknownAggregatorSuggestsClosest() {
        let yaml = ConfigFixtures.pipeline(steps: """
                  - aggregate:
                      store: stats
                      aggregator: user_purchse_stats
            """)
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.line == 9)
        #expect(diagnostics.first?.column == 23)
        #expect(diagnostics.first?.message.hasPrefix("unknown aggregator 'user_purchse_stats'; expected one of count, lowest_price, top_n, user_purchase_stats") == true)
        #expect(diagnostics.first?.message.hasSuffix("(did you mean 'user_purchase_stats'?)") == true)
    }

    @Test func unknownProcessorSuggestsClosest() {
        let yaml = ConfigFixtures.pipeline(steps: """
                  - process: { processor: recently_veiwed }
            """)
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.message.contains("unknown processor 'recently_veiwed'") == true)
        #expect(diagnostics.first?.message.contains("did you mean 'recently_viewed'?") == true)
    }

    @Test func reportsEveryProblemAtOnce() {
        let yaml = """
            application.id: shop streams
            defaults:
              processing.guarantee: exactly-once
              commit.interval.ms: -5
            topologies:
              - name: a
                source: { topics: [orders] }
                steps:
                  - agregate: { store: s, aggregator: count }
                  - filter: { field: x, op: greater, value: 1 }
              - name: a
                source: { topics: [orders], timestamp.format: unix }
                steps:
                  - aggregate: { store: dup, aggregator: count }
                  - window: { type: tumbling, size: 1h, store: dup, aggregator: count }
            """
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        let messages = diagnostics.map(\.message)
        #expect(diagnostics.count == 8, "\(diagnostics.map(\.description).joined(separator: "\n"))")
        #expect(messages.contains { $0.hasPrefix("invalid application.id 'shop streams'") })
        #expect(messages.contains { $0.contains("'exactly-once'") && $0.contains("did you mean 'exactly_once'?") })
        #expect(messages.contains { $0.contains("'-5'") && $0.contains("expected an integer greater than 0") })
        #expect(messages.contains { $0.hasPrefix("unknown step 'agregate'") })
        #expect(messages.contains { $0.contains("'greater'") && $0.contains("expected one of eq, ne, gt, gte, lt, lte, in, not_in, exists, missing") })
        #expect(messages.contains { $0.hasPrefix("duplicate pipeline name 'a'") })
        #expect(messages.contains { $0.contains("'unix'") && $0.contains("expected one of iso8601, epoch_millis, epoch_seconds") })
        #expect(messages.contains { $0.hasPrefix("store 'dup' is already defined at topologies.yaml:14:") })
        // Sorted by position.
        let positions = diagnostics.map { [$0.line, $0.column] }
        #expect(positions == positions.sorted { $0.lexicographicallyPrecedes($1) })
        // The error's description lists them all, one per line, with a count.
        let text = ConfigErrors(diagnostics: diagnostics).description
        #expect(text.split(separator: "\n").count == diagnostics.count + 1)
        #expect(text.hasSuffix("\(diagnostics.count) errors"))
    }

    @Test func environmentSubstitution() throws {
        let yaml = """
            application.id: ${APP_ID}
            kafka:
              bootstrap.servers: ${BROKERS:-localhost:9092}
              client.id: "${APP_ID}-client"
            redis:
              url: ${REDIS_URL:-redis://127.0.0.1:6379/0}
            defaults:
              commit.interval.ms: ${COMMIT_MS:-100}
              dlq.topic: $${NOT_A_VAR}
            topologies:
              - name: p
                source: { topics: ["${TOPIC_PREFIX:-dev}.orders"] }
                steps: [ { to: { topic: out } } ]
            """
        #expect(ConfigFixtures.diagnostics(yaml, environment: ["APP_ID": "shop"]).map(\.message)
            .contains { $0.contains("'${NOT_A_VAR}'") } == true) // `$${` escapes to a literal `${`, which is not a topic name.

        let ok = yaml.replacingOccurrences(of: "  dlq.topic: $${NOT_A_VAR}\n", with: "")
        let config = try ConfigFixtures.load(ok, environment: ["APP_ID": "shop", "COMMIT_MS": "42", "REDIS_URL": "", "TOPIC_PREFIX": "prod"])
        #expect(config.applicationId == "shop")
        #expect(config.kafka["bootstrap.servers"] == "localhost:9092")
        #expect(config.kafka["client.id"] == "shop-client")
        #expect(config.redisURL == "redis://127.0.0.1:6379/0") // empty => default
        #expect(config.commitIntervalMs == 42)
        #expect(config.pipelines[0].source.topics == ["prod.orders"])
    }

    @Test func unsetVariableIsAnError() {
        let yaml = """
            application.id: app
            redis:
              url: ${REDIS_URL}
            topologies:
              - name: p
                source: { topics: [orders] }
                steps: [ { to: { topic: out } } ]
            """
        let diagnostics = ConfigFixtures.diagnostics(yaml, environment: ["OTHER": "x"])
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.line == 3)
        #expect(diagnostics.first?.column == 8)
        #expect(diagnostics.first?.message == "environment variable 'REDIS_URL' is not set; expected it to be set, or a default as in '${REDIS_URL:-default}'")

        // No follow-on error for the unsubstituted value, even where it would be invalid.
        let appId = ConfigFixtures.diagnostics(yaml.replacingOccurrences(of: "application.id: app", with: "application.id: ${APP}"))
        #expect(appId.map(\.message) == [
            "environment variable 'APP' is not set; expected it to be set, or a default as in '${APP:-default}'",
            "environment variable 'REDIS_URL' is not set; expected it to be set, or a default as in '${REDIS_URL:-default}'",
        ])
        #expect(appId.first?.line == 1 && appId.first?.column == 17)
    }

    @Test func hoppingWindowWithoutAdvance() {
        let yaml = ConfigFixtures.pipeline(steps: """
                  - window:
                      type: hopping
                      size: 1h
                      store: w
                      aggregator: count
            """)
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.line == 8)
        #expect(diagnostics.first?.message.contains("missing required key 'advance' in hopping window") == true)
    }

    @Test func windowKeysMustMatchType() {
        let yaml = ConfigFixtures.pipeline(steps: """
                  - window: { type: tumbling, size: 1h, advance: 5m, store: w1, aggregator: count }
                  - window: { type: session, size: 1h, store: w2, aggregator: count }
                  - window: { type: hopping, size: 5m, advance: 1h, store: w3, aggregator: count }
                  - window: { type: sliding, size: 5m, store: w4, aggregator: count }
                  - window: { type: tumbling, size: 5 minutes, store: w5, aggregator: count }
            """)
        let messages = ConfigFixtures.diagnostics(yaml).map(\.message)
        #expect(messages.contains("'advance' is not allowed for a tumbling window; expected it only for hopping windows"))
        #expect(messages.contains("'size' is not allowed for a session window; expected it only for hopping and tumbling windows"))
        #expect(messages.contains { $0.hasPrefix("missing required key 'gap' in session window") })
        #expect(messages.contains { $0.hasPrefix("'advance' (3600000 ms) is larger than 'size' (300000 ms)") })
        #expect(messages.contains { $0.hasPrefix("invalid value 'sliding' for 'type'; expected one of tumbling, hopping, session") })
        #expect(messages.contains { $0.hasPrefix("invalid duration '5 minutes' for 'size' (") && $0.hasSuffix("expected a duration such as 500ms, 30s, 5m, 1h, 30d or 1h30m") })
    }

    @Test func yamlSyntaxErrorHasLine() {
        let yaml = """
            application.id: app
            topologies:
              - name: p
                source: { topics: [orders }
                steps: []
            """
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.line == 4)
        #expect(diagnostics.first?.message.hasPrefix("invalid YAML: ") == true)
    }

    @Test func duplicateYAMLKeyHasLine() {
        let yaml = """
            application.id: app
            topologies:
              - name: p
                name: q
                source: { topics: [orders] }
                steps: [ { to: { topic: out } } ]
            """
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.line == 3)
        #expect(diagnostics.first?.message.contains("duplicate key 'name'") == true)
    }

    @Test func emptyFileAndWrongRoot() {
        #expect(ConfigFixtures.diagnostics("").first?.message.contains("the file is empty") == true)
        let d = ConfigFixtures.diagnostics("- a\n- b\n")
        #expect(d.count == 1)
        #expect(d.first?.message.contains("must be a map") == true)
    }

    @Test func missingTopLevelKeys() {
        let messages = ConfigFixtures.diagnostics("kafka: {}\ntopolgies: []\n").map(\.message)
        #expect(messages.contains { $0.hasPrefix("missing required key 'application.id'") })
        #expect(messages.contains { $0.hasPrefix("missing required key 'topologies'") })
        #expect(messages.contains { $0.hasPrefix("unknown key 'topolgies' in the top level") && $0.hasSuffix("(did you mean 'topologies'?)") })
    }

    @Test func rekeyAtMostOnceAndStepShape() {
        let yaml = ConfigFixtures.pipeline(steps: """
                  - rekey: { field: a }
                  - aggregate: { store: s, aggregator: count }
                  - rekey: { field: b }
                  - to: { topic: x }
                    key: y
                  - filter
            """)
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        let messages = diagnostics.map(\.message)
        #expect(diagnostics.count == 3, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("a second 'rekey' in pipeline 'p' (the first is at topologies.yaml:7:9)") })
        #expect(messages.contains { $0.hasPrefix("a step has 2 keys ('to', 'key'); expected a map with exactly one key") })
        #expect(messages.contains { $0.hasPrefix("invalid step 'filter'; expected a map with exactly one key") })
    }

    @Test func filterValidation() {
        let yaml = ConfigFixtures.pipeline(steps: """
                  - filter:
                      - { field: a, op: exists, value: 1 }
                      - { field: b, op: in, value: 3 }
                      - { field: c, op: gt }
                      - { field: d, op: eq, value: [1, 2] }
                      - { field: e, op: lt, value: true }
                      - { feld: f, op: eq, value: 1 }
                      - { field: g, op: not_in, value: [a, b] }
            """)
        let messages = ConfigFixtures.diagnostics(yaml).map(\.message)
        #expect(messages.count == 7, "\(messages)")
        #expect(messages.contains("'value' is not allowed with op 'exists'; expected only 'field' and 'op'"))
        #expect(messages.contains("invalid value '3' for op 'in'; expected a non-empty list of scalar values"))
        #expect(messages.contains { $0.hasPrefix("missing required key 'value' in filter condition") })
        #expect(messages.contains("invalid value a list for op 'eq'; expected a scalar value (use op 'in' for a list)"))
        #expect(messages.contains("invalid value 'true' for op 'lt'; expected a number or a string"))
        #expect(messages.contains { $0.hasPrefix("unknown key 'feld' in filter condition") && $0.hasSuffix("(did you mean 'field'?)") })
        #expect(messages.contains { $0.hasPrefix("missing required key 'field' in filter condition") })
    }

    @Test func selectValidation() {
        let yaml = ConfigFixtures.pipeline(steps: """
                  - select:
                      a: 5
                      b: { mull: [x, y] }
                      c: { mul: [x] }
                      d: { add: [x, { const: text }] }
                      e: { const: [1] }
                      f: { concat: [x, [y]] }
            """)
        let messages = ConfigFixtures.diagnostics(yaml).map(\.message)
        #expect(messages.count == 6, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("invalid expression '5' for select field 'a'") && $0.hasSuffix("(write { const: 5 } for a literal)") })
        #expect(messages.contains { $0.hasPrefix("unknown expression 'mull'") && $0.hasSuffix("(did you mean 'mul'?)") })
        #expect(messages.contains("invalid value a list for 'mul'; expected a list of at least 2 field names or numbers"))
        #expect(messages.contains("invalid constant 'text' for 'add'; expected a number"))
        #expect(messages.contains { $0.hasPrefix("invalid value a list for 'const'") })
        #expect(messages.contains { $0.hasPrefix("invalid operand a list for 'concat'") })
    }

    @Test func redisValidation() {
        let yaml = ConfigFixtures.pipeline(steps: """
                  - redis: { key: "user:{userId", mode: hash }
                  - redis: { key: "a:{}", mode: value }
                  - redis: { key: k, mode: sorted_set }
                  - redis: { key: k, mode: sorted_set, member: m }
                  - redis: { key: k, mode: sorted_set, member: m, members: ms, score: s }
                  - redis: { key: k, mode: hash, score: s }
                  - redis: { key: k, mode: hashh }
                  - redis: { key: k, mode: delete, ttl: soon }
            """)
        let messages = ConfigFixtures.diagnostics(yaml).map(\.message)
        #expect(messages.count == 8, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("unclosed '{' at offset 5 in key template 'user:{userId'") })
        #expect(messages.contains { $0.hasPrefix("invalid placeholder '{}' in key template 'a:{}'") })
        #expect(messages.contains { $0.hasPrefix("redis mode 'sorted_set' needs 'member' (with 'score') or 'members'") })
        #expect(messages.contains { $0.hasPrefix("missing required key 'score' in redis sorted_set with 'member'") })
        #expect(messages.contains { $0.hasPrefix("redis mode 'sorted_set' takes 'member' or 'members', not both") })
        #expect(messages.contains("'score' is not allowed in redis mode 'hash'; expected only fields besides key, mode and ttl"))
        #expect(messages.contains { $0.hasPrefix("invalid value 'hashh' for 'mode'") && $0.hasSuffix("(did you mean 'hash'?)") })
        #expect(messages.contains { $0.hasPrefix("invalid duration 'soon' for 'ttl'") })
    }

    @Test func storeNamesUniqueAcrossFileIncludingGlobalTables() {
        let yaml = """
            application.id: app
            global_tables:
              - { name: shared, topic: t }
            topologies:
              - name: p
                source: { topics: [orders] }
                steps:
                  - process: { processor: fraud_check, stores: [shared, Bad_Name] }
                  - to: { topic: app-shared-changelog } # a global table has no changelog
            """
        let messages = ConfigFixtures.diagnostics(yaml).map(\.message)
        #expect(messages.count == 2, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("store 'shared' is already defined at topologies.yaml:3:13") })
        #expect(messages.contains { $0.hasPrefix("invalid store name 'Bad_Name'; expected a store name of lowercase letters, digits and '-'") })
    }

    @Test func sinkIntoEngineOwnedTopicIsRejected() {
        let yaml = ConfigFixtures.pipeline(steps: """
                  - rekey: { field: a }
                  - aggregate: { store: s, aggregator: count }
                  - to: { topic: app-s-changelog }
                  - to: { topic: app-p-repartition }
            """)
        let messages = ConfigFixtures.diagnostics(yaml).map(\.message)
        #expect(messages.count == 2, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("topic 'app-s-changelog' is the changelog of store 's'") })
        #expect(messages.contains { $0.hasPrefix("topic 'app-p-repartition' is the repartition topic of pipeline 'p'") })
    }
}
