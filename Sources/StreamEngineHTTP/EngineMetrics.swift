import Metrics
import Prometheus

/// The process's metrics backend: swift-metrics bootstrapped once with
/// swift-prometheus, so every `Counter`, `Gauge` and `Timer` of the engine
/// (records in/out/dead-lettered per pipeline, commit and Redis write
/// durations, lag, restore progress, keys per store) shows in `GET /metrics`.
public enum EngineMetrics {
    /// The registry `GET /metrics` renders.
    public static let registry = PrometheusCollectorRegistry()

    private static let bootstrapped: Bool = {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Commit and Redis write durations: 0.5 ms … 10 s.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        MetricsSystem.bootstrap(factory)
        return true
    }()

    /// Bootstraps swift-metrics with the Prometheus factory (once per process; later calls do nothing).
    /// Call it before the runtime starts so that its counters register here.
    public static func bootstrap() {
        _ = bootstrapped
    }

    /// The Prometheus text exposition of every metric.
    public static func render() -> [UInt8] {
        registry.emitToBuffer()
    }
}
