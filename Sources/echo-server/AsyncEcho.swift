import WebSocketAsync

/// The echo written against the async face (`--async`): one task per
/// connection, each message sent back whole as it arrives. Fragments are
/// joined first, unlike the callback echo's chunk-by-chunk reply.
enum AsyncEcho {
    static func handler(limit: Int) throws -> AsyncWebSocketHandler {
        try AsyncWebSocketHandler(inboundLimit: limit, outboundLimit: limit) { connection in
            for try await message in connection.messages {
                try await connection.send(message)
            }
        }
    }
}
