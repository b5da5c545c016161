// swift-tools-version:6.0
import PackageDescription

// Layers, one way: WebSocketCore (pure protocol, no I/O) and UVKit (thin libuv
// wrapper) know nothing of each other; WebSocketServer joins them; executables
// depend on WebSocketServer only.
let package = Package(
    name: "UVWebSocket",
    products: [
        .library(name: "WebSocketCore", targets: ["WebSocketCore"]),
        .library(name: "UVKit", targets: ["UVKit"]),
        .library(name: "WebSocketServer", targets: ["WebSocketServer"]),
        .executable(name: "echo-server", targets: ["echo-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .systemLibrary(
            name: "CLibCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "WebSocketCore", dependencies: ["CLibCrypto"]),
        .target(name: "UVKit", dependencies: ["CLibUV"]),
        .target(
            name: "WebSocketServer",
            dependencies: ["WebSocketCore", "UVKit", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "echo-server",
            dependencies: [
                "WebSocketServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources/Public")]
        ),
        .testTarget(name: "WebSocketCoreTests", dependencies: ["WebSocketCore"]),
        .testTarget(name: "UVKitTests", dependencies: ["UVKit"]),
        .testTarget(
            name: "WebSocketServerTests",
            dependencies: ["WebSocketServer", "WebSocketCore", "UVKit", .product(name: "Logging", package: "swift-log")]
        ),
    ],
    swiftLanguageModes: [.v5]
)
