import ServiceLifecycle
import UVKit

extension WebSocketClient {
    /// This client as a swift-service-lifecycle `Service`, for a
    /// `ServiceGroup`; for a client that runs its own loop. Connect first
    /// (`connect(to:)` before the loop runs, on the thread that made the
    /// client), then hand the service to the group.
    ///
    /// The client stays bound to its loop and not `Sendable`; the service is
    /// a handle that runs the loop on a thread of its own and reaches it
    /// through `EventLoop.execute` only.
    public var service: WebSocketClientService<Handler> { WebSocketClientService(client: LoopBound(self)) }
}

/// A `WebSocketClient` with its own loop, run by a `ServiceGroup`
/// (`client.service`).
public struct WebSocketClientService<Handler: WebSocketHandler>: Service {
    /// The client, touched here only on its loop's thread or before it runs.
    let client: LoopBound<WebSocketClient<Handler>>

    /// Runs the client's loop on a thread of its own and returns once every
    /// connection has closed.
    ///
    /// - The service group's graceful shutdown, and cancellation, close every
    ///   connection with 1001 (the closing handshake, within the close
    ///   timeout) and drop those still connecting.
    /// - Throws `WebSocketClientError.notRunnable` on a shared loop (run that
    ///   loop instead) or if the client ran already.
    public func run() async throws {
        let client = self.client
        let loop = client.value.loop
        let shutdown: @Sendable () -> Void = { loop.execute { client.value.shutdown() } }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await LoopThread.run(name: "ws-client") { try client.value.run() }
            } onGracefulShutdown: {
                shutdown()
            }
        } onCancel: {
            shutdown()
        }
    }
}
