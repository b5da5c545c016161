import ServiceLifecycle
import UVKit

/// A group is a swift-service-lifecycle `Service`: a `ServiceGroup` runs it
/// beside the application's other services, and the group's graceful
/// shutdown (on SIGTERM, say) is ours: stop accepting, 1001 to every peer,
/// drain up to `drainTimeout`, return.
///
/// The loops keep threads of their own (a loop blocks the thread it runs
/// on, which must not be one of the concurrency pool's): `run()` only waits
/// for them, suspended.
extension WebSocketServerGroup: Service {
    /// Runs every loop until shutdown, each on a thread of its own, and
    /// returns once all have closed their handles.
    ///
    /// - The service group's graceful shutdown starts ours, with
    ///   `drainTimeout` for the closing handshakes.
    /// - Cancellation (another service of the group failed, or the task was
    ///   cancelled) shuts down at once: 1001 to every peer, no wait for the
    ///   answers. `run()` then returns rather than throw.
    /// - Throws `WebSocketServerError.notRunnable` if the group ran already,
    ///   and the first loop's failure to close cleanly, as `run()` does.
    public func run() async throws {
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await runOnOwnThreads()
            } onGracefulShutdown: { [self] in
                requestShutdown(drainTimeout: drainTimeout)
            }
        } onCancel: { [self] in
            requestShutdown(drainTimeout: .zero)
        }
    }

    /// The blocking `run()` on a thread of its own, waited for.
    private func runOnOwnThreads() async throws {
        let group = self
        // Not async here, so this is the blocking `run()`.
        try await LoopThread.run(name: "ws-loop-0") { try group.run() }
    }
}
