// swift-tools-version:6.0
import PackageDescription

// Layers, one way (docs/architecture.md):
//   CMasking          payload unmasking in C, to choose AVX2 at run time
//   WebSocketCore     the protocol without I/O (framing, the two-role state
//                     machine, handshakes, the extension seam)
//   WebSocketCompression  permessage-deflate (RFC 7692) on zlib, through the
//                     core's extension seam; no I/O
//   UVKit             a thin libuv wrapper, knowing nothing of WebSockets
//   TLSKit            OpenSSL contexts: certificates, trust, SNI, ALPN; no I/O
//   WebSocketRuntime  joins them: the per-loop context, the transport, the
//                     connection both roles share
//   WebSocketServer   routes, static files, the connection table, shutdown
//   WebSocketClient   URLs, name resolution, the client handshake
//   WebSocketAsync    the async/await face over either role: messages as
//                     an AsyncSequence, sends from any task
//   WebSocketBackplane  topics across servers through Redis (hiredis' RESP
//                     reader over UVKit's TCP streams)
// Executables depend on the server or the client only.
let package = Package(
    name: "UVWebSocket",
    products: [
        .library(name: "WebSocketCore", targets: ["WebSocketCore"]),
        .library(name: "UVKit", targets: ["UVKit"]),
        .library(name: "TLSKit", targets: ["TLSKit"]),
        .library(name: "WebSocketCompression", targets: ["WebSocketCompression"]),
        .library(name: "WebSocketServer", targets: ["WebSocketServer"]),
        .library(name: "WebSocketClient", targets: ["WebSocketClient"]),
        .library(name: "WebSocketBackplane", targets: ["WebSocketBackplane"]),
        .library(name: "WebSocketAsync", targets: ["WebSocketAsync"]),
        .executable(name: "echo-server", targets: ["echo-server"]),
        .executable(name: "autobahn-client", targets: ["autobahn-client"]),
        .executable(name: "chat-server", targets: ["chat-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        // `make docs`: the DocC catalogs of the library modules.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            path: "Sources/CShims/CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CShims/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CLibCrypto",
            path: "Sources/CShims/CLibCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            path: "Sources/CShims/CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .systemLibrary(
            name: "CLibSSL",
            path: "Sources/CShims/CLibSSL",
            pkgConfig: "libssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // Payload unmasking with AVX2 where the CPU has it (chosen at run time).
        .target(name: "CMasking", path: "Sources/CShims/CMasking"),
        .target(name: "WebSocketCore", dependencies: ["CLibCrypto", "CMasking"]),
        .target(name: "UVKit", dependencies: ["CLibUV"]),
        // OpenSSL's record buffers and small per-record blocks kept in lists
        // per thread (loop) instead of freed and allocated around every record.
        .target(name: "CTLSBuffers", dependencies: ["CLibSSL"], path: "Sources/CShims/CTLSBuffers"),
        .target(name: "TLSKit", dependencies: ["CLibSSL", "CTLSBuffers"]),
        .target(name: "WebSocketCompression", dependencies: ["WebSocketCore", "CZlib"]),
        .target(
            name: "WebSocketRuntime",
            dependencies: ["WebSocketCore", "WebSocketCompression", "UVKit", "TLSKit", "CLibSSL", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "WebSocketServer",
            dependencies: ["WebSocketRuntime", "WebSocketCore", "UVKit", .product(name: "Logging", package: "swift-log"),
                           .product(name: "CoreMetrics", package: "swift-metrics"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .target(
            name: "WebSocketClient",
            dependencies: ["WebSocketRuntime", "WebSocketCore", "UVKit", "TLSKit", .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .target(
            name: "WebSocketAsync",
            dependencies: ["WebSocketRuntime", "WebSocketClient", "WebSocketCore", "UVKit"]
        ),
        .target(
            name: "WebSocketBackplane",
            dependencies: ["WebSocketServer", "UVKit", "CHiredis", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "echo-server",
            dependencies: [
                "WebSocketServer",
                "WebSocketAsync",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources/Public")]
        ),
        // The chat sample: rooms on topics, across servers through Redis.
        .executableTarget(
            name: "chat-server",
            dependencies: [
                "WebSocketServer",
                "WebSocketBackplane",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources/Public")]
        ),
        // Autobahn|Testsuite's fuzzingserver drives this client (make test).
        .executableTarget(
            name: "autobahn-client",
            dependencies: [
                "WebSocketClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "WebSocketCoreTests", dependencies: ["WebSocketCore"]),
        .testTarget(name: "WebSocketCompressionTests", dependencies: ["WebSocketCompression", "WebSocketCore", "CZlib"]),
        .testTarget(name: "UVKitTests", dependencies: ["UVKit"]),
        .testTarget(
            name: "WebSocketServerTests",
            dependencies: ["WebSocketServer", "WebSocketClient", "WebSocketCore", "UVKit", "TLSKit", "CLibCrypto", "WebSocketBackplane",
                           "WebSocketAsync",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "CoreMetrics", package: "swift-metrics"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
