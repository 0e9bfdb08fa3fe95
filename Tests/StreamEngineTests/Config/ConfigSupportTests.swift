import Testing
import StreamEngine

@Suite("KeyTemplate")
struct KeyTemplateTests {
    @Test func parsesAndRenders() throws {
        let t = try KeyTemplate(parsing: "user:{userId}:{key}:{{tag}}")
        #expect(t.parts == [.literal("user:"), .field("userId"), .literal(":"), .key, .literal(":{tag}")])
        #expect(t.referencedFields == ["userId"])
        #expect(t.usesRecordKey)
        let fields = ["userId": "42"]
        #expect(t.render(recordKey: "k1") { fields[$0] } == "user:42:k1:{tag}")
        #expect(t.render(recordKey: nil) { fields[$0] } == nil)
        #expect(t.render(recordKey: "k1") { _ in nil } == nil)
    }

    @Test func rejectsUnknownBraceSyntax() {
        for bad in ["a{", "a}", "{}", "{a b}", "{a{b}"] {
            #expect(throws: KeyTemplateError.self) { try KeyTemplate(parsing: bad) }
        }
    }
}

@Suite("Durations in configuration")
struct ConfigDurationTests {
    @Test(arguments: [
        ("500ms", 500), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000), ("30d", 2_592_000_000),
        ("1h30m", 5_400_000), ("1m30s", 90_000), ("2s500ms", 2_500), ("0", 0),
    ])
    func parsesDurations(_ text: String, _ millis: Int) throws {
        let yaml = ConfigFixtures.pipeline(steps: "      - window: { type: tumbling, size: 1h, grace: \(text), store: w, aggregator: count }")
        let config = try ConfigFixtures.load(yaml)
        guard case .window(let w, _) = config.pipelines[0].steps[0] else { Issue.record("expected window"); return }
        #expect(w.graceMillis == millis)
    }

    @Test(arguments: ["", "5", "m", "1x", "30m1h", "1h1h", "-5s", "1.5h", "5 m"])
    func rejectsInvalidDurations(_ text: String) {
        let yaml = ConfigFixtures.pipeline(steps: "      - window: { type: tumbling, size: \"\(text)\", store: w, aggregator: count }")
        let diagnostics = ConfigFixtures.diagnostics(yaml)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.message.contains("expected a duration") == true)
    }
}

@Suite("Config scalar typing")
struct ConfigScalarTypingTests {
    @Test func scalarTypingFollowsCoreSchema() throws {
        let yaml = ConfigFixtures.pipeline(steps: """
                  - process:
                      processor: fraud_check
                      params:
                        int: 10
                        float: 2.5
                        hex: 0x1F
                        yes: yes
                        quoted: "10"
                        bool: true
                        nothing: null
                        tilde: ~
                        list: [1, a, false]
            """)
        let config = try ConfigFixtures.load(yaml)
        guard case .process(let p, _) = config.pipelines[0].steps[0] else { Issue.record("expected process"); return }
        #expect(p.params["int"] == .number(10))
        #expect(p.params["int"]?.intValue == 10)
        #expect(p.params["float"] == .number(2.5))
        #expect(p.params["float"]?.intValue == nil)
        #expect(p.params["hex"] == .number(31))
        #expect(p.params["yes"] == .string("yes"))
        #expect(p.params["quoted"] == .string("10"))
        #expect(p.params["bool"] == .bool(true))
        #expect(p.params["nothing"] == .null)
        #expect(p.params["tilde"] == .null)
        #expect(p.params["list"] == .array([.number(1), .string("a"), .bool(false)]))
        // Params keep the file's order.
        #expect(p.params.keys == ["int", "float", "hex", "yes", "quoted", "bool", "nothing", "tilde", "list"])
        #expect(JSONValue.object(p.params).description == #"{"int":10,"float":2.5,"hex":31,"yes":"yes","quoted":"10","bool":true,"nothing":null,"tilde":null,"list":[1,"a",false]}"#)
    }
}

@Suite("Did-you-mean suggestions")
struct SuggestionTests {
    @Test func suggestsTypeNamesAndEnumValues() {
        let yaml = ConfigFixtures.pipeline(steps: "      - to: { topic: out }", source: """
                  topics: orders
                  required: { a: strin, b: int, c: bool, d: nmber, e: text }
                  timestamp.format: epoch_milis

            """)
        let messages = ConfigFixtures.diagnostics(yaml).map(\.message)
        #expect(messages.count == 6, "\(messages)")
        #expect(messages.contains { $0.contains("'strin'") && $0.hasSuffix("(did you mean 'string'?)") })
        #expect(messages.contains { $0.contains("'int'") && $0.hasSuffix("(did you mean 'integer'?)") })
        #expect(messages.contains { $0.contains("'bool'") && $0.hasSuffix("(did you mean 'boolean'?)") })
        #expect(messages.contains { $0.contains("'nmber'") && $0.hasSuffix("(did you mean 'number'?)") })
        #expect(messages.contains { $0.contains("'text'") && !$0.contains("did you mean") })
        #expect(messages.contains { $0.contains("'epoch_milis'") && $0.hasSuffix("(did you mean 'epoch_millis'?)") })
    }

    @Test func noSuggestionForUnrelatedShortWords() {
        let yaml = ConfigFixtures.pipeline(steps: "      - to: { topic: out }")
            .replacingOccurrences(of: "application.id: app", with: "application.id: app\ndefaults: { on_error: die }")
        let messages = ConfigFixtures.diagnostics(yaml).map(\.message)
        #expect(messages == ["invalid value 'die' for 'on_error'; expected one of dlq, fail"])
    }
}
