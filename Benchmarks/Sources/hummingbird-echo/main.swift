import Hummingbird
import HummingbirdWebSocket
import Logging

// The Hummingbird peer for the async face's benchmark: hummingbird-websocket's
// own upgrade and an async echo of whole messages, the same shape as
// `echo-server --async`. Usage: hummingbird-echo PORT (127.0.0.1, /ws).
let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
var logger = Logger(label: "hummingbird-echo")
logger.logLevel = .warning

let router = Router(context: BasicWebSocketRequestContext.self)
router.ws("/ws") { _, _ in
    .upgrade()
} onUpgrade: { inbound, outbound, _ in
    for try await message in inbound.messages(maxSize: 16 << 20) {
        switch message {
        case .text(let text): try await outbound.write(.text(text))
        case .binary(let bytes): try await outbound.write(.binary(bytes))
        }
    }
}
let app = Application(
    router: Router(),
    server: .http1WebSocketUpgrade(webSocketRouter: router),
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    onServerRunning: { _ in print("listening on http://127.0.0.1:\(port)") },
    logger: logger
)
try await app.runService()
