import Testing
import StreamEngine

@Suite("TopologyDescriber")
struct TopologyDescriberTests {
    @Test func textMentionsTopicsStoresAndSubTopologies() throws {
        let config = try ConfigFixtures.load(ConfigFixtures.fullYAML)
        let text = TopologyDescriber.text(config)
        #expect(text.contains("pipeline lowest-price"))
        #expect(text.contains("source: topic product_prices (key: field productId, timestamp: field timestamp as epoch_millis)"))
        #expect(text.contains("source: topic purchases (key: record key, timestamp: record timestamp)"))
        #expect(text.contains("source: topics page_views, product_views"))
        // Changelog of every store, repartition topic at the rekey split.
        for store in config.storeNames {
            #expect(text.contains("store \(store) -> changelog topic shop-streams-\(store)-changelog"))
        }
        #expect(text.contains("-> repartition topic shop-streams-purchases-repartition"))
        #expect(text.contains("sub-topology purchases-0"))
        #expect(text.contains("sub-topology purchases-1"))
        #expect(text.contains("source: repartition topic shop-streams-purchases-repartition"))
        // Steps in order, sinks, global tables, DLQ.
        #expect(text.contains("1. filter: price gt 0 and currency in [\"EUR\",\"USD\"] and deleted missing"))
        #expect(text.contains("2. select: productId = productId, amount = mul(price, quantity)"))
        #expect(text.contains("window: hopping 1h advancing 15m, grace 5m, top_n into store trending-window"))
        #expect(text.contains("topic lowest-prices-out (key: field productId)"))
        #expect(text.contains("redis hash product:{productId}:lowest fields price=amount, seller=seller, ttl 1d"))
        #expect(text.contains("category-popularity <- topic shop-streams-category-popularity"))
        #expect(text.contains("dead-letter topic: shop-streams-dlq"))
        #expect(text.contains("pipeline purchases (on_error: fail)"))
        let filter = try #require(text.range(of: "1. filter"))
        let select = try #require(text.range(of: "2. select"))
        #expect(filter.lowerBound < select.lowerBound)
    }

    @Test func mermaidIsAFlowchartWithAnEdgePerStep() throws {
        let config = try ConfigFixtures.load(ConfigFixtures.fullYAML)
        let mermaid = TopologyDescriber.mermaid(config)
        #expect(mermaid.hasPrefix("flowchart LR\n"))
        let lines = mermaid.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let edges = lines.filter { $0.contains("-->") || $0.contains("-.-") }
        // Every step node has an incoming solid edge.
        for pipeline in config.pipelines {
            let pid = "p_" + pipeline.name.replacingOccurrences(of: "-", with: "_")
            for index in pipeline.steps.indices {
                let sid = "\(pid)_s\(index + 1)"
                #expect(edges.contains { $0.hasSuffix("--> \(sid)") }, "no edge into \(sid)")
            }
        }
        // Node shapes.
        #expect(lines.contains("t_product_prices([\"product_prices\"])"))
        #expect(lines.contains("st_purchases_by_user[(\"purchases-by-user\")]"))
        #expect(lines.contains { $0.hasPrefix("p_lowest_price_s5{{\"5. redis: hash product:{productId}:lowest") && $0.hasSuffix("\"}}") })
        #expect(lines.contains("p_lowest_price_s3 -.- st_lowest_prices"))
        #expect(lines.contains("st_lowest_prices -.-> t_shop_streams_lowest_prices_changelog"))
        #expect(lines.contains("p_purchases_s1 --> t_shop_streams_purchases_repartition"))
        #expect(lines.contains("t_shop_streams_purchases_repartition --> p_purchases_s2"))
        #expect(lines.contains("p_lowest_price_s4 --> t_lowest_prices_out"))
        #expect(lines.contains("t_shop_streams_category_popularity --> g_category_popularity"))
        // Labels are quoted and escape double quotes.
        #expect(mermaid.contains("#quot;EUR#quot;"))
        // Every subgraph is closed.
        #expect(lines.filter { $0.hasPrefix("subgraph ") }.count == lines.filter { $0 == "end" }.count)
        // Ids contain only letters, digits and underscores.
        for line in lines where line.contains("-->") {
            for id in line.components(separatedBy: " --> ") {
                #expect(id.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "bad id in \(line)")
            }
        }
    }
}
