import Foundation
import Logging
import Testing
import UVKit
import WebSocketServer

/// Runs a server on its own thread, listening on 127.0.0.1 on a free port.
final class ServerHarness<Handler: WebSocketHandler>: @unchecked Sendable {
    let server: WebSocketServer<Handler>
    let port: Int
    private let done = DispatchSemaphore(value: 0)
    private var thread: Thread?
    private(set) var runError: Error?

    /// - Parameter routes: false leaves the routes to the test (added with
    ///   `onLoop`); true routes "/ws".
    init(options: WebSocketOptions = WebSocketOptions(), handler: Handler, staticRoot: String? = nil,
         fileOptions: StaticFileOptions = StaticFileOptions(), routes: Bool = true) throws {
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        server = try WebSocketServer(options: options, handler: handler, logger: logger)
        if routes { server.route(webSocket: "/ws") }
        if let staticRoot { try server.serveFiles(from: staticRoot, options: fileOptions) }
        port = try server.listen(host: "127.0.0.1", port: 0)
        let thread = Thread { [self] in
            do { try server.run() } catch { runError = error }
            done.signal()
        }
        self.thread = thread
        thread.start()
    }

    /// Runs `body` on the loop thread and returns its result.
    func onLoop<T>(_ body: @escaping (WebSocketServer<Handler>) -> T) -> T {
        let box = LoopBound(server)
        let work = LoopBound(body)
        let result = ResultBox<T>()
        let ready = DispatchSemaphore(value: 0)
        server.loop.execute {
            result.value = work.value(box.value)
            ready.signal()
        }
        ready.wait()
        return result.value!
    }

    var metrics: ServerMetrics { onLoop { $0.metrics } }

    /// Graceful shutdown; returns once `run()` has returned and closed the loop.
    /// A loop that does not close (a handle left open) fails the test.
    func stop(drainTimeout: Duration = .seconds(2)) {
        server.requestShutdown(drainTimeout: drainTimeout)
        guard done.wait(timeout: .now() + 30) == .success else {
            Issue.record("server did not stop")
            return
        }
        if let runError { Issue.record("run() failed: \(runError)") }
        // The thread's closure holds this harness: let go of the thread so
        // the harness and its server are freed (AddressSanitizer checks it).
        thread = nil
    }
}

final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
