// swift-tools-version:6.1
import PackageDescription

// A package of its own, so that embedders of UVWebSocket never inherit the
// benchmark's dependencies. It depends on the main package by path.
let package = Package(
    name: "UVWebSocketBenchmarks",
    dependencies: [
        .package(name: "UVWebSocket", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
    ],
    targets: [
        // The load generator, on the public WebSocketClient (and, for the raw
        // TCP ceiling, UVKit and the core's ByteRing).
        .executableTarget(
            name: "ws-bench",
            dependencies: [
                .product(name: "WebSocketClient", package: "UVWebSocket"),
                .product(name: "WebSocketCore", package: "UVWebSocket"),
                .product(name: "UVKit", package: "UVWebSocket"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // A load generator must cost less than what it loads; its state is
            // confined to one loop thread, so the dynamic exclusivity checks buy
            // nothing here (the library marks its hot properties instead).
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        // The ceiling: a raw TCP echo on libuv with no framing.
        .executableTarget(
            name: "uv-tcp-echo",
            dependencies: [.product(name: "UVKit", package: "UVWebSocket")]
        ),
        // This project's fan-out peer for the publish benchmark.
        .executableTarget(
            name: "uv-pubsub",
            dependencies: [.product(name: "WebSocketServer", package: "UVWebSocket"),
                           .product(name: "WebSocketBackplane", package: "UVWebSocket")]
        ),
        // The SwiftNIO peer: NIOWebSocket's upgrader and an echo handler
        // (with NIOSSL in front for the TLS benchmark).
        .executableTarget(
            name: "nio-echo",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The Hummingbird peer for the async face: an async echo on
        // hummingbird-websocket.
        .executableTarget(
            name: "hummingbird-echo",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ]
        ),
        // Micro benchmarks with allocation counts: `swift package benchmark`.
        .executableTarget(
            name: "CoreBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "WebSocketCore", package: "UVWebSocket"),
                .product(name: "WebSocketCompression", package: "UVWebSocket"),
                .product(name: "WebSocketServer", package: "UVWebSocket"),
                .product(name: "UVKit", package: "UVWebSocket"),
            ],
            path: "Benchmarks/CoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
