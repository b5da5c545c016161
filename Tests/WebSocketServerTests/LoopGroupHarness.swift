import Foundation
import Logging
import Synchronization
import Testing
import UVKit
import WebSocketClient
import WebSocketServer

/// Runs a server group on its own thread (loop 0 there, the others on the
/// group's threads), listening on 127.0.0.1 on a free port.
final class GroupHarness<Handler: WebSocketHandler>: @unchecked Sendable {
    let group: WebSocketServerGroup<Handler>
    let port: Int
    private let done = DispatchSemaphore(value: 0)
    private var thread: Thread?
    private(set) var runError: Error?

    init(loops: Int, distribution: ConnectionDistribution = .reusePort,
         options: WebSocketOptions = WebSocketOptions(), makeHandler: (Int) -> Handler) throws {
        var logger = Logger(label: "test-group")
        logger.logLevel = .warning
        group = try WebSocketServerGroup(loops: loops, options: options, distribution: distribution, logger: logger,
                                         makeHandler: makeHandler)
        group.route(webSocket: "/ws")
        port = try group.listen(host: "127.0.0.1", port: 0)
        let thread = Thread { [self] in
            do { try group.run() } catch { runError = error }
            done.signal()
        }
        self.thread = thread
        thread.start()
    }

    var url: String { "ws://127.0.0.1:\(port)/ws" }

    /// Graceful shutdown of every loop; fails the test if a loop does not
    /// stop or does not close cleanly.
    func stop(drainTimeout: Duration = .seconds(2)) {
        group.requestShutdown(drainTimeout: drainTimeout)
        guard done.wait(timeout: .now() + 30) == .success else {
            Issue.record("group did not stop")
            return
        }
        if let runError { Issue.record("run() failed: \(runError)") }
        thread = nil
    }
}

/// Identities of the connections a server group opened, from every loop.
final class OpenedRegistry: Sendable {
    let ids = Lock<[ConnectionID]>([])
    let closes = Lock<[(ConnectionID, UInt16, String)]>([])

    var count: Int { ids.withLock { $0.count } }

    /// Waits (polling) until `count` connections are open.
    func waitFor(_ count: Int, seconds: Double = 30) -> [ConnectionID]? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let now = ids.withLock { $0 }
            if now.count >= count { return now }
            usleep(10_000)
        }
        return nil
    }
}

/// Server side: records each opened connection's identity and each close;
/// on "go", broadcasts "0" to "N-1" (N from the message "go N").
final class RegisteringHandler: WebSocketHandler {
    let registry: OpenedRegistry
    init(registry: OpenedRegistry) { self.registry = registry }

    func didOpen(_ connection: WebSocketConnection<RegisteringHandler>) {
        let id = connection.id
        registry.ids.withLock { $0.append(id) }
    }

    func didReceive(_ connection: WebSocketConnection<RegisteringHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        let text = String(decoding: chunk, as: UTF8.self)
        guard text.hasPrefix("go "), let count = Int(text.dropFirst(3)) else { return }
        for n in 0..<count { connection.server!.broadcast(text: "\(n)") }
    }

    func didClose(_ connection: WebSocketConnection<RegisteringHandler>, code: CloseCode, reason: String) {
        let id = connection.id
        registry.closes.withLock { $0.append((id, code.rawValue, reason)) }
    }
}

/// Client side: keeps each connection's text messages in order; closes a
/// connection once it has `expected` of them. `onAllOpen` runs once, with the
/// connection that opened last, when `connections` are open.
final class SequenceClient: WebSocketHandler {
    typealias ConnectionData = [String]
    let connections: Int
    let expected: Int
    var onAllOpen: ((WebSocketConnection<SequenceClient>) -> Void)?
    private var opened = 0
    /// Each connection's messages, as it closed, with its close code.
    private(set) var finished: [(messages: [String], code: UInt16)] = []

    init(connections: Int, expected: Int) {
        self.connections = connections
        self.expected = expected
    }

    func didOpen(_ connection: WebSocketConnection<SequenceClient>) {
        connection.data = []
        opened += 1
        if opened == connections { onAllOpen?(connection) }
    }

    func didReceive(_ connection: WebSocketConnection<SequenceClient>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        connection.data!.append(String(decoding: message, as: UTF8.self))
        if connection.data!.count == expected { connection.close(code: .normalClosure, reason: "done") }
    }

    func didClose(_ connection: WebSocketConnection<SequenceClient>, code: CloseCode, reason: String) {
        finished.append((connection.data ?? [], code.rawValue))
    }
}

/// Runs a client on a thread of its own, for tests that act on the server
/// while its connections are open.
final class ClientThread<Handler: WebSocketHandler>: @unchecked Sendable {
    let client: WebSocketClient<Handler>
    private let done = DispatchSemaphore(value: 0)
    private(set) var failures: [WebSocketClientError] = []
    private(set) var runError: Error?

    init(handler: Handler, url: String, connections: Int) throws {
        client = try WebSocketClient(handler: handler)
        for _ in 0..<connections {
            client.connect(to: url) { [unowned self] result in
                if case .failure(let error) = result { failures.append(error) }
            }
        }
        Thread { [self] in
            do { try client.run() } catch { runError = error }
            done.signal()
        }.start()
    }

    /// Waits for every connection to end; false on timeout.
    func wait(seconds: Double = 60) -> Bool {
        done.wait(timeout: .now() + seconds) == .success
    }
}
