// swift-tools-version:6.1
import PackageDescription

/// The record path's modules drop the runtime exclusivity checks in release builds.
/// Their mutable state lives in actors and final classes, so the compiler cannot prove
/// accesses disjoint and calls `swift_beginAccess` on most of them; without the checks the
/// two-stage job runs 5.3 % fewer instructions per input record (callgrind, 78,061 -> 73,930,
/// 2026-12-01), as the checks also kept the optimizer from merging accesses. Debug
/// builds, which the tests run, keep every check, so a conflicting access still traps there.
///
/// Debug builds compile these modules with `-O` as well (still with -enable-testing and
/// the exclusivity checks): the tests start `stream-engine` processes that run the shipped
/// topologies on tens of thousands of events, which took 192 s unoptimised against 41 s
/// optimised for 20,000 events (one `run --stop-at-end`, 2026-12-03), and CI timed out on
/// it. Remove the second flag to step through these modules in a debugger.
let hotPath: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

let package = Package(
    name: "StreamEngine",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "stream-engine", targets: ["Runner"]),
        .executable(name: "stream-engine-bench", targets: ["Benchmarks"]),
        .library(name: "StreamEngine", targets: ["StreamEngine"]),
        .library(name: "StreamValues", targets: ["StreamValues"]),
        .library(name: "Topologies", targets: ["Topologies"]),
        // For tests of pipelines and operators: TopologyTestDriver (in memory) and
        // EngineTestHarness (embedded Kafka + a real redis-server).
        .library(name: "StreamEngineTesting", targets: ["StreamEngineTesting"]),
        .library(name: "StreamEngineHTTP", targets: ["StreamEngineHTTP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // HTTP service (issue 11). Only the configuration trait is dropped (it pulls in
        // swift-configuration, which nothing here uses).
        .package(
            url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1",
            traits: ["FullFoundation"]),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
    ],
    targets: [
        // C libraries from Debian packages, found through pkg-config.
        .systemLibrary(
            name: "CRdKafka", path: "Sources/CRdKafka", pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(
            name: "CHiredis", path: "Sources/CHiredis", pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(
            name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(
            name: "CMariaDB", path: "Sources/CMariaDB", pkgConfig: "libmariadb",
            providers: [.apt(["libmariadb-dev"])]),
        // glibc's <malloc.h> (mallopt), for the tools' malloc arena limit.
        .systemLibrary(name: "CGlibcMalloc", path: "Sources/CGlibcMalloc"),
        // Lifts librdkafka 2.0.2's mock-cluster retention limit (see the header).
        .target(name: "CKafkaMockLimits", dependencies: ["CRdKafka"]),

        // Thin Swift layers over the C libraries.
        .target(
            name: "KafkaClient",
            dependencies: [
                "CRdKafka", "CKafkaMockLimits", "ThreadExecutors", "ByteArrays",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hotPath),
        .target(name: "ThreadExecutors"),
        // Byte arrays made without the standard library's slow path (see ConcatenatedBytes).
        .target(name: "ByteArrays", swiftSettings: hotPath),
        // posix_spawn for every child process (local redis-server, the benchmark's children).
        .target(name: "ChildProcess"),
        .target(
            name: "RedisClient",
            dependencies: [
                "CHiredis", "ThreadExecutors", "ChildProcess", .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "Zstd", dependencies: ["CZstd"]),
        .target(
            name: "MariaDBClient",
            dependencies: [
                "CMariaDB", "ThreadExecutors", "ChildProcess", .product(name: "Logging", package: "swift-log"),
            ]),

        // JSON values, their parser and serializer, durations and event times.
        .target(name: "StreamValues", dependencies: ["ByteArrays"], swiftSettings: hotPath),
        // The generic engine (re-exports StreamValues).
        .target(
            name: "StreamEngine",
            dependencies: [
                "StreamValues", "KafkaClient", "RedisClient", "MariaDBClient", "Zstd",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPath),
        // Read-only inspection of state stores (snapshots, changelogs) for the `state` CLI.
        .target(
            name: "StreamInspection",
            dependencies: ["StreamEngine", "KafkaClient", "ThreadExecutors", .product(name: "Logging", package: "swift-log")]),
        // The testing product: TopologyTestDriver, InMemoryRedis, EngineTestHarness, fixtures.
        .target(
            name: "StreamEngineTesting",
            dependencies: [
                "StreamEngine", "KafkaClient", "RedisClient", "ThreadExecutors",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // E-commerce processors, registered by name for topologies.yaml.
        .target(name: "Topologies", dependencies: ["StreamEngine"], swiftSettings: hotPath),
        // The generic HTTP service: interactive queries across instances, metrics, health,
        // OpenAPI document and the live dashboard.
        .target(
            name: "StreamEngineHTTP",
            dependencies: [
                "StreamEngine", "KafkaClient", "ThreadExecutors",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // The shop's HTTP routes over the Redis keys the pipelines write.
        .target(
            name: "ShopAPI",
            dependencies: [
                "StreamEngine", "StreamEngineHTTP", "Topologies", "KafkaClient", "RedisClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // What the command-line tools share: exit codes, --log-level, config loading, output.
        .target(
            name: "CLISupport",
            dependencies: [
                "StreamEngine", "Topologies", "CGlibcMalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The shipped `stream-engine` command.
        .executableTarget(
            name: "Runner",
            dependencies: [
                "StreamEngine", "StreamInspection", "Topologies", "CLISupport", "ThreadExecutors", "MariaDBClient",
                "StreamEngineHTTP", "ShopAPI", "KafkaClient", "RedisClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // `stream-engine-bench`: the benchmark, outside the shipped binary.
        .executableTarget(
            name: "Benchmarks",
            dependencies: [
                "StreamEngine", "Topologies", "CLISupport", "KafkaClient", "RedisClient", "MariaDBClient", "ChildProcess", "ThreadExecutors",
                "StreamEngineHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),

        .testTarget(name: "KafkaClientTests", dependencies: ["KafkaClient", "ThreadExecutors"]),
        .testTarget(name: "ThreadExecutorsTests", dependencies: ["ThreadExecutors"]),
        .testTarget(name: "ByteArraysTests", dependencies: ["ByteArrays"]),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient"]),
        .testTarget(name: "ZstdTests", dependencies: ["Zstd"]),
        .testTarget(name: "MariaDBClientTests", dependencies: ["MariaDBClient"]),
        .testTarget(name: "StreamValuesTests", dependencies: ["StreamValues"]),
        .testTarget(name: "StreamEngineTests", dependencies: ["StreamEngine", "StreamEngineTesting", "MariaDBClient"]),
        .testTarget(name: "TopologiesTests", dependencies: ["Topologies", "StreamEngine", "StreamEngineTesting", "MariaDBClient"]),
        .testTarget(
            name: "RunnerTests",
            dependencies: ["StreamEngine", "StreamInspection", "Topologies", "ThreadExecutors", "StreamEngineTesting", "MariaDBClient", "KafkaClient", "RedisClient"]),
        .testTarget(
            name: "StreamEngineHTTPTests",
            dependencies: ["StreamEngineHTTP", "StreamEngine", .product(name: "Hummingbird", package: "hummingbird")]),
    ],
    swiftLanguageModes: [.v6]
)
