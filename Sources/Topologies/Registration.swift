import StreamEngine

/// Registers the e-commerce aggregators and processors used by `topologies.yaml`.
///
/// Call it on the registry the runtime and the validator use, after the engine's
/// built-ins are in place (`OperatorRegistry()` has them):
///
/// | name | kind | used by |
/// | --- | --- | --- |
/// | `platform_prices` | aggregator | lowest price per platform (`price:{productId}`) |
/// | `purchase_stats` | aggregator | user purchase stats (`user:{userId}:stats`, `…:categories`) |
/// | `product_units` | aggregator | category popularity (`popular:{category}`, the category table) |
/// | `behaviour_stats` | processor | behaviour with sessions (`behaviour:{viewerId}`) |
/// | `recent_guest_views` | processor | recently viewed, guest side and login merge |
/// | `recent_member_views` | processor | recently viewed, member side (`recent:member:{memberId}`) |
/// | `recommendations` | processor | `rec:{userId}` |
/// | `session_co_views` | processor | related products: products in the same session |
/// | `related_products` | processor | related products: decayed co-occurrence (`related:{productId}`) |
public func registerShopOperators(into registry: inout OperatorRegistry) {
    registry.register(aggregator: "platform_prices", PlatformPricesAggregator.make)
    registry.register(aggregator: "purchase_stats", PurchaseStatsAggregator.make)
    registry.register(aggregator: "product_units", ProductUnitsAggregator.make)
    registry.register(processor: "behaviour_stats", BehaviourStatsProcessor.make)
    registry.register(processor: "recent_guest_views", RecentGuestViewsProcessor.make)
    registry.register(processor: "recent_member_views", RecentMemberViewsProcessor.make)
    registry.register(processor: "recommendations", RecommendationsProcessor.make)
    registry.register(processor: "session_co_views", SessionCoViewsProcessor.make)
    registry.register(processor: "related_products", RelatedProductsProcessor.make)
}

/// A registry with the engine's built-ins and the shop operators.
public func shopOperatorRegistry() -> OperatorRegistry {
    var registry = OperatorRegistry()
    registerShopOperators(into: &registry)
    return registry
}
