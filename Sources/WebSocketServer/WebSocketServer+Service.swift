import ServiceLifecycle
import UVKit

extension WebSocketServer {
    /// This server as a swift-service-lifecycle `Service`, for a
    /// `ServiceGroup`. Set the server up (routes, files, `listen`) first.
    ///
    /// The server itself stays bound to its loop and not `Sendable` (the
    /// compiler keeps it off other threads); the service is a handle that
    /// can only do what is safe from any thread: run the loop on a thread of
    /// its own and ask it to shut down.
    public var service: WebSocketServerService<Handler> { WebSocketServerService(server: LoopBound(self)) }
}

/// A `WebSocketServer` run by a `ServiceGroup` (`server.service`): the
/// group's graceful shutdown is the server's (stop accepting, 1001 to every
/// peer, drain up to `drainTimeout`, return), as for a `WebSocketServerGroup`.
public struct WebSocketServerService<Handler: WebSocketHandler>: Service {
    /// The server, touched here only through calls safe from any thread.
    let server: LoopBound<WebSocketServer<Handler>>

    /// Runs the loop on a thread of its own until shutdown and returns once
    /// every connection has closed.
    ///
    /// - The service group's graceful shutdown starts ours, with the server's
    ///   `drainTimeout` for the closing handshakes.
    /// - Cancellation (another service failed, or the task was cancelled)
    ///   shuts down at once: 1001 to every peer, no wait for the answers.
    ///   `run()` then returns rather than throw.
    /// - Throws `WebSocketServerError.notRunnable` if the server ran already.
    public func run() async throws {
        let server = self.server
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await LoopThread.run(name: "ws-loop") { try server.value.run() }
            } onGracefulShutdown: {
                server.value.requestShutdown(drainTimeout: server.value.drainTimeout)
            }
        } onCancel: {
            server.value.requestShutdown(drainTimeout: .zero)
        }
    }
}
