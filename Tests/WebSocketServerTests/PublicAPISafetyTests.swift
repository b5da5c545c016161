import CLibCrypto
import Foundation
import Logging
import Testing
import TLSKit
import UVKit
import WebSocketClient
import WebSocketCore
import WebSocketServer
#if canImport(Glibc)
import Glibc
#endif

/// A server handler driven by the text messages it gets: each names a public
/// call to make from inside `didReceive`, so that a test can reach the
/// orders of calls a user's program would.
final class CommandHandler: WebSocketHandler {
    /// `didReceive` is on the stack (to catch a callback inside another).
    private var receiving = false
    let events = Lock<[String]>([])
    /// A client made from a handler, kept until the server stops.
    var keptClient: WebSocketClient<RecordingClient>?

    func record(_ event: String) { events.withLock { $0.append(event) } }

    func didReceive(_ connection: WebSocketConnection<CommandHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        receiving = true
        defer { receiving = false }
        let text = String(decoding: chunk, as: UTF8.self)
        if text.hasPrefix("close:") {
            connection.close(code: CloseCode(UInt16(text.dropFirst(6))!), reason: "asked")
        } else if text == "stop" {
            connection.server!.loop.stop()
        } else if text == "metrics" {
            let figures = connection.server!.group!.metrics()
            connection.send(text: "loops \(figures.perLoop.count)")
        } else if text.hasPrefix("grow:") {
            // A client on this loop with a larger ring, made while this read's
            // chunk points into the loop's ring: the chunk must stay intact.
            var options = WebSocketClientOptions()
            options.receiveBufferSize = 1 << 20
            keptClient = try? WebSocketClient(handler: RecordingClient(), options: options, loop: connection.server!.loop)
            connection.send(chunk, type: type)
        } else if text == "flood" {
            // The peer has reset: a send finds it out.
            let big = [UInt8](repeating: 7, count: 64 * 1024)
            var dropped = false
            for _ in 0..<64 where !dropped { dropped = connection.send(binary: big) == .dropped }
            record(dropped ? "flood dropped" : "flood sent")
        } else {
            connection.send(chunk, type: type, isFinal: isFinal)
        }
    }

    func didClose(_ connection: WebSocketConnection<CommandHandler>, code: CloseCode, reason: String) {
        record(receiving ? "didClose inside didReceive" : "didClose \(code.rawValue)")
    }
}

/// A client handler that lets its client go in its own `didClose`.
final class ReleasingClient: WebSocketHandler {
    var client: WebSocketClient<ReleasingClient>?
    var closed = 0

    func didOpen(_ connection: WebSocketConnection<ReleasingClient>) {
        connection.close(code: .normalClosure)
    }

    func didReceive(_ connection: WebSocketConnection<ReleasingClient>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {}

    func didClose(_ connection: WebSocketConnection<ReleasingClient>, code: CloseCode, reason: String) {
        closed += 1
        client = nil
    }
}

/// A raw client's upgrade whose peer then resets the connection (RST, not FIN).
func resetAfterSending(_ client: TestClient) {
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
}

func quietLogger() -> Logger {
    var logger = Logger(label: "safety")
    logger.logLevel = .critical
    return logger
}

/// Waits (at most 10 s) until `done`, polling.
func waitUntil(_ done: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(10)
    while !done() {
        if Date() > deadline { return false }
        usleep(2000)
    }
    return true
}

@Suite("Public calls in any order: no crash, no hang, no corruption", .serialized)
struct PublicAPISafetyTests {
    // MARK: Releases

    @Test("a client made on a server's loop and not kept, released while connecting")
    func clientReleasedWhileConnectingOnSharedLoop() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let outcome = ResultBox<String>()
        harness.onLoop { server in
            let client = try? WebSocketClient(handler: RecordingClient(), loop: server.loop, logger: quietLogger())
            client?.connect(to: "ws://127.0.0.1:\(harness.port)/ws") { result in
                outcome.value = "\(result)"
            }
            // `client` is released here, with its connect under way.
        }
        let echo = try TestClient(port: harness.port)
        try echo.sendText("still serving")
        #expect(try echo.nextMessage() == .message(.text, Array("still serving".utf8)))
        #expect(harness.onLoop { _ in outcome.value } == "\(Result<Int, WebSocketClientError>.failure(.clientShutDown))")
    }

    @Test("a client on its own loop released before run(), to a live and to a refused port")
    func clientOnOwnLoopReleasedBeforeRun() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        for port in [harness.port, closedPort()] {
            var failures: [WebSocketClientError] = []
            do {
                let client = try WebSocketClient(handler: RecordingClient(), logger: quietLogger())
                client.connect(to: "ws://127.0.0.1:\(port)/ws") { result in
                    if case .failure(let error) = result { failures.append(error) }
                }
                client.connect(to: "ws://localhost:\(port)/ws") { result in
                    if case .failure(let error) = result { failures.append(error) }
                }
            }
            // Released: the numeric connect is dropped at once, the resolving
            // one is told when its answer comes (both as shut down).
            #expect(failures == [.clientShutDown, .clientShutDown])
        }
        #expect(waitUntil { harness.metrics.connectionsOpen == 0 })
    }

    @Test("a shared-loop client released in its own didClose")
    func clientReleasedInItsOwnDidClose() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let handler = ReleasingClient()
        harness.onLoop { server in
            let client = try? WebSocketClient(handler: handler, loop: server.loop, logger: quietLogger())
            handler.client = client
            client?.connect(to: "ws://127.0.0.1:\(harness.port)/ws") { _ in }
        }
        #expect(waitUntil { harness.onLoop { _ in handler.closed } == 1 })
        #expect(harness.onLoop { _ in handler.client == nil })
        let echo = try TestClient(port: harness.port)
        try echo.sendText("after")
        #expect(try echo.nextMessage() == .message(.text, Array("after".utf8)))
    }

    @Test("a server on its own loop, driven by the caller, released with a connection open: no block, the peer sees the end")
    func serverReleasedWithOpenConnection() throws {
        var server: WebSocketServer<EchoHandler>? = try WebSocketServer(handler: EchoHandler(), logger: quietLogger())
        server!.route(webSocket: "/ws")
        let port = try server!.listen(port: 0)
        let loop = server!.loop
        let opened = ResultBox<TestClient>()
        let connecting = Thread { opened.value = try? TestClient(port: port) }
        connecting.start()
        spin(loop) { server!.metrics.webSocketsOpened == 1 }
        #expect(server!.metrics.webSocketsOpened == 1)
        let started = Date()
        server = nil
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(waitUntil { opened.value != nil })
        #expect(opened.value?.waitForClose(timeout: 5) == true)
    }

    @Test("a server on a loop the caller passed in, released with a connection open: 1001, and the loop closes")
    func serverReleasedOnCallersLoop() throws {
        let loop = try EventLoop()
        var server: WebSocketServer<EchoHandler>? = try WebSocketServer(handler: EchoHandler(), loop: loop, logger: quietLogger())
        server!.route(webSocket: "/ws")
        let port = try server!.listen(port: 0)
        let opened = ResultBox<TestClient>()
        let connecting = Thread { opened.value = try? TestClient(port: port) }
        connecting.start()
        spin(loop) { server!.metrics.webSocketsOpened == 1 && opened.value != nil }
        server = nil
        let peer = ResultBox<TestClient.Event>()
        let reading = Thread { peer.value = try? opened.value!.next() }
        reading.start()
        spin(loop) { peer.value != nil }
        #expect(peer.value == .close(1001, "server released"))
        try? opened.value!.sendClose(1001)
        opened.value!.shutdownWrite()
        spin(loop) { !loop.runNoWait() }
        try loop.close()
    }

    @Test("a group released with a record still in its inbox (a broadcast, then listen throws)")
    func groupReleasedWithPendingRecord() throws {
        let blocker = try ServerHarness(handler: EchoHandler())
        defer { blocker.stop() }
        var group: WebSocketServerGroup<EchoHandler>? = try WebSocketServerGroup(loops: 2, logger: quietLogger()) { _ in EchoHandler() }
        #expect(group!.broadcast(text: "pending") == 2)
        let sent = Lock(0)
        group!.collectMetrics { _, _ in sent.withLock { $0 += 1 } }
        #expect(throws: WebSocketServerError.self) { try group!.listen(port: blocker.port) }
        group = nil
        // The gathering was answered as the inboxes closed.
        #expect(sent.withLock { $0 } == 1)
    }

    // MARK: Lifecycle calls

    @Test("run() a second time throws, on a server, a client and a group")
    func runTwice() throws {
        let server = try WebSocketServer(handler: EchoHandler(), logger: quietLogger())
        try server.run()
        #expect(throws: WebSocketServerError.self) { try server.run() }
        let client = try WebSocketClient(handler: RecordingClient(), logger: quietLogger())
        try client.run()
        #expect(throws: WebSocketClientError.self) { try client.run() }
        let group = try WebSocketServerGroup(loops: 2, logger: quietLogger()) { _ in EchoHandler() }
        group.requestShutdown()
        try group.run()
        #expect(throws: WebSocketServerError.self) { try group.run() }
        let shared = try EventLoop()
        let sharedClient = try WebSocketClient(handler: RecordingClient(), loop: shared, logger: quietLogger())
        #expect(throws: WebSocketClientError.self) { try sharedClient.run() }
        sharedClient.shutdown()
        try shared.close()
    }

    @Test("requestShutdown before, and after, run(); shutdown after it; execute on a closed loop")
    func shutdownAtAnyTime() throws {
        let server = try WebSocketServer(handler: EchoHandler(), logger: quietLogger())
        server.route(webSocket: "/ws")
        _ = try server.listen(port: 0)
        server.requestShutdown()
        try server.run()
        server.requestShutdown()
        var completed = false
        server.shutdown { completed = true }
        #expect(completed)
        #expect(server.loop.execute {} == false)
        #expect(throws: WebSocketServerError.self) { try server.listen(port: 0) }
    }

    @Test("loop.stop() from a handler: run() returns while the peer stays, which sees 1001")
    func loopStopFromHandler() throws {
        let server = try WebSocketServer(handler: CommandHandler(), logger: quietLogger())
        server.route(webSocket: "/ws")
        let port = try server.listen(port: 0)
        let peer = ResultBox<TestClient.Event>()
        let client = Thread {
            guard let c = try? TestClient(port: port) else { return }
            try? c.sendText("stop")
            peer.value = try? c.next()
            // Stays connected without answering.
            sleep(3)
        }
        client.start()
        let started = Date()
        try server.run()
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(waitUntil { peer.value != nil })
        #expect(peer.value == .close(1001, "server shutting down"))
    }

    @Test("WebSocketServerGroup.metrics() from a handler answers at once")
    func groupMetricsFromHandler() throws {
        let group = try WebSocketServerGroup(loops: 2, logger: quietLogger()) { _ in CommandHandler() }
        group.route(webSocket: "/ws")
        let port = try group.listen(port: 0)
        let running = Thread { try? group.run() }
        running.start()
        let client = try TestClient(port: port)
        try client.sendText("metrics")
        #expect(try client.nextMessage() == .message(.text, Array("loops 2".utf8)))
        group.requestShutdown(drainTimeout: .zero)
        #expect(waitUntil { running.isFinished })
    }

    // MARK: Options

    @Test("timeouts of any size are accepted and mean never; head limits out of range are refused")
    func optionsOfAnySize() throws {
        var options = WebSocketOptions()
        options.keepAliveInterval = .seconds(Int64.max)
        options.keepAliveTimeout = .seconds(Int64.max)
        options.handshakeTimeout = .seconds(Int64.max)
        options.closeTimeout = .seconds(Int64.max)
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        let client = try TestClient(port: harness.port)
        try client.sendText("never")
        #expect(try client.nextMessage() == .message(.text, Array("never".utf8)))
        try client.sendClose(1000)
        #expect(try client.nextMessage() == .close(1000, ""))
        harness.stop()

        for size in [-1, 0, 255, (1 << 20) + 1] {
            var bad = WebSocketOptions()
            bad.requestHeadLimits.maxHeadSize = size
            #expect(throws: WebSocketServerError.self) { try WebSocketServer(options: bad, handler: EchoHandler()) }
            var clientOptions = WebSocketClientOptions()
            clientOptions.maxResponseHeadSize = size
            #expect(throws: WebSocketClientError.self) { try WebSocketClient(handler: RecordingClient(), options: clientOptions) }
        }
        var headers = WebSocketOptions()
        headers.requestHeadLimits.maxHeaderCount = 0
        #expect(throws: WebSocketServerError.self) { try WebSocketServer(options: headers, handler: EchoHandler()) }
        var injected = WebSocketOptions()
        injected.subprotocols = ["chat\r\nSet-Cookie: x=1"]
        #expect(throws: WebSocketServerError.self) { try WebSocketServer(options: injected, handler: EchoHandler()) }
        for bad in [["X-A: 1\r\nX-B: 2"], ["no colon"], [": empty name"]] {
            var clientOptions = WebSocketClientOptions()
            clientOptions.headers = bad
            #expect(throws: WebSocketClientError.self) { try WebSocketClient(handler: RecordingClient(), options: clientOptions) }
        }
        var origin = WebSocketClientOptions()
        origin.origin = "https://a\nb"
        #expect(throws: WebSocketClientError.self) { try WebSocketClient(handler: RecordingClient(), options: origin) }
        for (loops, limit) in [(0, 1), (100_000, 1), (1, 0)] {
            #expect(throws: WebSocketServerError.self) {
                try WebSocketServerGroup(loops: loops, inboxLimit: limit) { _ in EchoHandler() }
            }
        }
        let server = try WebSocketServer(handler: EchoHandler(), logger: quietLogger())
        for port in [-1, 65536] {
            #expect(throws: WebSocketServerError.self) { try server.listen(port: port) }
        }
        try server.run()
    }

    // MARK: The handler protocol and the loop's buffers

    @Test("a send that finds the peer reset reports 1006 after didReceive returns, not inside it")
    func sendFailureReportedAfterCallback() throws {
        let handler = CommandHandler()
        let harness = try ServerHarness(handler: handler)
        defer { harness.stop() }
        var sawDrop = false
        for _ in 0..<20 where !sawDrop {
            let client = try TestClient(port: harness.port)
            resetAfterSending(client)
            try client.sendText("flood")
            // Closed with SO_LINGER 0: a reset, while the server sends.
            _ = Glibc.shutdown(client.fd, Int32(SHUT_RDWR))
            #expect(waitUntil { handler.events.withLock { $0.contains { $0.hasPrefix("didClose") } } })
            let events = handler.events.withLock { taken in defer { taken.removeAll() }; return taken }
            #expect(!events.contains("didClose inside didReceive"), "\(events)")
            sawDrop = events.contains("flood dropped")
        }
        #expect(sawDrop, "no send found the reset inside the handler")
    }

    @Test("a client made in a handler with a larger ring leaves the running read's chunk intact")
    func ringNotRegrownUnderRunningRead() throws {
        var options = WebSocketOptions()
        options.receiveBufferSize = 4096
        let handler = CommandHandler()
        let harness = try ServerHarness(options: options, handler: handler)
        defer {
            harness.onLoop { _ in handler.keptClient?.shutdown() }
            harness.stop()
        }
        let client = try TestClient(port: harness.port)
        let text = "grow:" + String(repeating: "0123456789", count: 300)
        try client.sendText(text)
        try client.sendText("after the growth")
        #expect(try client.nextMessage() == .message(.text, Array(text.utf8)))
        #expect(try client.nextMessage() == .message(.text, Array("after the growth".utf8)))
    }

    // MARK: The wire

    @Test("close codes RFC 6455 §7.4 keeps off the wire go out as 1011; valid ones as given")
    func closeCodesCheckedBeforeTheWire() throws {
        let harness = try ServerHarness(handler: CommandHandler())
        defer { harness.stop() }
        for (asked, sent): (UInt16, UInt16) in [(999, 1011), (1004, 1011), (1005, 1011), (1006, 1011), (1015, 1011),
                                                 (2000, 1011), (5000, 1011), (1000, 1000), (1012, 1012), (4999, 4999)] {
            let client = try TestClient(port: harness.port)
            try client.sendText("close:\(asked)")
            #expect(try client.nextMessage() == .close(sent, "asked"), "asked \(asked)")
        }
    }

    @Test("send from a thread that does not run the loop traps, naming the rule")
    func foreignThreadSendTraps() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let harness = try! ServerHarness(handler: KeepingHandler())
            let client = try! TestClient(port: harness.port)
            try! client.sendText("keep")
            _ = try! client.nextMessage()
            let connection = harness.onLoop { _ in KeepingHandler.kept.map(LoopBound.init) }!
            // This thread does not run the server's loop.
            connection.value.send(text: "from another thread")
        }.map { result in
            #expect(String(decoding: result.standardErrorContent, as: UTF8.self)
                .contains("WebSocketConnection.send was called on a thread that does not run its loop"))
        }
    }

    // MARK: TLS

    @Test("a TLS session that cannot be made ends that connection only")
    func sslNewFailureRefusesOneConnection() throws {
        let certificates = try TestCertificates("ssl-new")
        defer { certificates.remove() }
        let harness = try ServerHarness(options: tlsOptions(certificates), handler: EchoHandler())
        defer { harness.stop() }
        TLSContext.refuseSessions(1)
        let (refused, _) = try wssEcho(port: harness.port, options: trusting(certificates.ca))
        guard case .failure = refused else {
            Issue.record("the connection without a session opened: \(String(describing: refused))")
            return
        }
        let (result, handler) = try wssEcho(port: harness.port, options: trusting(certificates.ca))
        guard case .success = result else {
            Issue.record("the next connection failed: \(String(describing: result))")
            return
        }
        #expect(handler.echoes == [Array("hello".utf8)])
    }

    @Test("an OpenSSL error the application leaves on the loop thread does not fail a TLS read")
    func applicationErrorQueueIgnored() throws {
        let certificates = try TestCertificates("err-queue")
        defer { certificates.remove() }
        let harness = try ServerHarness(options: tlsOptions(certificates), handler: ErrorQueueDirtyingEcho())
        defer { harness.stop() }
        let payloads = (0..<20).map { [UInt8](repeating: UInt8($0), count: 100 + $0) }
        let (result, handler) = try wssEcho(port: harness.port, options: trusting(certificates.ca), payloads: payloads)
        guard case .success = result else {
            Issue.record("connect failed: \(String(describing: result))")
            return
        }
        #expect(handler.echoes == payloads)
        #expect(handler.closes == [1000])
    }
}

/// Keeps the last connection it saw, for a test to misuse from another thread.
final class KeepingHandler: WebSocketHandler {
    nonisolated(unsafe) static var kept: WebSocketConnection<KeepingHandler>?

    func didReceive(_ connection: WebSocketConnection<KeepingHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        KeepingHandler.kept = connection
        connection.send(chunk, type: type, isFinal: isFinal)
    }
}

/// Echoes, and leaves an error in this thread's OpenSSL queue each time (a
/// failed file open through OpenSSL, as application code might do).
final class ErrorQueueDirtyingEcho: WebSocketHandler {
    func didReceive(_ connection: WebSocketConnection<ErrorQueueDirtyingEcho>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        connection.send(chunk, type: type, isFinal: isFinal)
        _ = BIO_new_file("/nonexistent/uvws-error-queue", "r")
    }
}
