import WebSocketBackplane
import WebSocketServer
#if canImport(Glibc)
import Glibc
#endif

/// This project's fan-out peer for the publish benchmark: every connection
/// subscribes to "bench", and every message any connection sends is
/// published to it (the sender included), as the other peers do. With a
/// Redis URL, publications cross to every server on that Redis.
/// Usage: uv-pubsub PORT [redis://HOST:PORT]
final class FanOut: WebSocketHandler, Sendable {
    func didOpen(_ connection: WebSocketConnection<FanOut>) {
        connection.subscribe("bench")
    }

    func didReceive(_ connection: WebSocketConnection<FanOut>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        connection.server?.publish(message, type: type, to: "bench")
    }
}

let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 9008 : 9008
var options = WebSocketOptions()
options.keepAliveInterval = .zero
let group = try WebSocketServerGroup(loops: 1, options: options, sharedHandler: FanOut())
group.route(webSocket: "/ws")
if arguments.count > 2 {
    group.use(backplane: try RedisBackplane(url: RedisURL(parsing: arguments[2])))
}
let bound = try group.listen(host: "127.0.0.1", port: port)
try group.shutdownOnSignals(drainTimeout: .zero)
print("listening on 127.0.0.1:\(bound)")
fflush(nil)
try group.run()
