import UVKit
import WebSocketClient
import WebSocketCore
import WebSocketRuntime

/// Opens client connections for async code: `connect` returns the same
/// `AsyncWebSocketConnection` a server's async handler gets.
///
/// The connections live on one loop of the process's, made on first use and
/// run on a thread of its own for the life of the process (as SwiftNIO's
/// singleton event loop group does): a task cannot host a loop, which
/// blocks its thread. An application that wants its own loops uses
/// `WebSocketClient` with an `AsyncWebSocketHandler` instead.
public enum AsyncWebSocketClient {
    /// Connects to a `ws://` or `wss://` URL and returns once the handshake
    /// is done.
    ///
    /// - Parameters:
    ///   - url: `ws://` or `wss://`, with a host name or address, an optional port and path.
    ///   - options: the client's options (TLS trust, subprotocols, compression, timeouts).
    ///   - inboundLimit: buffered inbound bytes past which reading stops.
    ///   - outboundLimit: bytes not yet taken by the kernel past which `send` waits.
    /// - Throws: `WebSocketClientError` for why the connection did not open
    ///   (the handshake timeout bounds the wait), `AsyncWebSocketError` for
    ///   limits out of range or a loop that could not start.
    public static func connect(to url: String, options: WebSocketClientOptions = WebSocketClientOptions(),
                               inboundLimit: Int = 1 << 20,
                               outboundLimit: Int = 1 << 20) async throws -> AsyncWebSocketConnection {
        let loop = try SharedClientLoop.shared.get().loop
        let handler = try AsyncWebSocketHandler(routes: nil, fallback: nil, inboundLimit: inboundLimit,
                                                outboundLimit: outboundLimit)
        return try await withCheckedThrowingContinuation { continuation in
            let posted = loop.execute {
                let client: WebSocketClient<AsyncWebSocketHandler>
                do {
                    client = try WebSocketClient(handler: handler, options: options, loop: loop)
                } catch {
                    return continuation.resume(throwing: error)
                }
                client.connect(to: url) { result in
                    switch result {
                    case .success(let connection):
                        guard let async = connection.data else {
                            // Closed inside `didOpen`'s turn: nothing to hand over.
                            return continuation.resume(throwing: AsyncWebSocketError.closed(code: nil))
                        }
                        // The client lives as long as its connection.
                        async.owner = client
                        continuation.resume(returning: async)
                    case .failure(let error):
                        continuation.resume(throwing: error)
                    }
                }
            }
            if !posted { continuation.resume(throwing: AsyncWebSocketError.loopClosed) }
        }
    }
}

/// The process's loop for async clients: made on first use, run for the
/// life of the process on a thread of its own. A far timer keeps `run()`
/// going while no connection is open.
final class SharedClientLoop: Sendable {
    static let shared: Result<SharedClientLoop, AsyncWebSocketError> = Result { () throws(AsyncWebSocketError) in
        try SharedClientLoop()
    }

    let loop: EventLoop
    /// Never stopped; closed with the process.
    private let keepAlive: LoopBound<Timer>
    private let thread: LoopThread

    private init() throws(AsyncWebSocketError) {
        do {
            loop = try EventLoop()
            // Set up before the thread runs the loop, so from this thread.
            let timer = Timer(loop: loop)
            timer.start(timeout: UInt64(1) << 40) {}
            keepAlive = LoopBound(timer)
            let loop = loop
            thread = try LoopThread(name: "ws-async-client") { loop.run() }
        } catch {
            throw .loopUnavailable("\(error)")
        }
    }
}
