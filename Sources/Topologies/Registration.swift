import StreamEngine

/// Registers the e-commerce aggregators and processors used by `topologies.yaml`.
///
/// Call it on the registry the runtime and the validator use, after the engine's
/// built-ins are in place (`OperatorRegistry()` has them).
public func registerShopOperators(into registry: inout OperatorRegistry) {
}
