import Foundation
import Testing
import UVKit
import WebSocketClient
import WebSocketServer
#if canImport(Glibc)
import Glibc
#endif

/// A client handler that records what happened, for the tests below.
final class RecordingClient: WebSocketHandler {
    var opened = 0
    var messages: [(MessageType, [UInt8])] = []
    var closes: [(UInt16, String)] = []
    /// Sent on open, when set.
    var greeting: [UInt8]?
    var closeAfterEcho = false
    /// Closes once this many messages have arrived, when set.
    var closeAfter: Int?

    func didOpen(_ connection: WebSocketConnection<RecordingClient>) {
        opened += 1
        if let greeting { connection.send(binary: greeting) }
    }

    func didReceive(_ connection: WebSocketConnection<RecordingClient>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        messages.append((type, Array(message)))
        if closeAfterEcho || messages.count == closeAfter { connection.close(code: .normalClosure, reason: "done") }
    }

    func didClose(_ connection: WebSocketConnection<RecordingClient>, code: CloseCode, reason: String) {
        closes.append((code.rawValue, reason))
    }
}

/// Runs `connect` on a new client's own loop and returns each completion's result.
func runClient(_ handler: RecordingClient, options: WebSocketClientOptions = WebSocketClientOptions(),
               urls: [String]) throws -> [Result<String?, WebSocketClientError>] {
    let client = try WebSocketClient(handler: handler, options: options)
    var results: [Result<String?, WebSocketClientError>] = []
    for url in urls {
        client.connect(to: url) { result in results.append(result.map { $0.subprotocol }) }
    }
    try client.run()
    return results
}

func failureOf(_ result: Result<String?, WebSocketClientError>?) -> WebSocketClientError? {
    if case .failure(let error)? = result { return error }
    return nil
}

/// A port nothing listens on: bound, then closed.
func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(fd, $0, length); _ = getsockname(fd, $0, &length) }
    }
    close(fd)
    return Int(UInt16(bigEndian: addr.sin_port))
}

@Suite("WebSocketClient over 127.0.0.1", .serialized)
struct ClientTests {
    @Test("connects to localhost, agrees a subprotocol, echoes, and closes with the closing handshake")
    func echoAndClose() throws {
        var serverOptions = WebSocketOptions()
        serverOptions.subprotocols = ["chat.v2", "chat.v1"]
        let harness = try ServerHarness(options: serverOptions, handler: EchoHandler())
        defer { harness.stop() }
        let handler = RecordingClient()
        handler.greeting = [1, 2, 3]
        handler.closeAfterEcho = true
        var options = WebSocketClientOptions()
        options.subprotocols = ["chat.v1", "chat.v2"]
        let results = try runClient(handler, options: options, urls: ["ws://localhost:\(harness.port)/ws?room=1"])
        #expect(try results.first?.get() == "chat.v1", "the client's first choice that the server speaks")
        #expect(handler.opened == 1)
        #expect(handler.messages.map(\.1) == [[1, 2, 3]])
        #expect(handler.closes.first?.0 == 1000 && handler.closes.first?.1 == "done")
    }

    @Test("each failure to open is its own error")
    func errors() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let refusedPort = closedPort()
        // A listener that accepts and never answers: the handshake times out.
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(silent) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(silent, $0, length); _ = getsockname(silent, $0, &length) }
        }
        listen(silent, 8)
        let silentPort = Int(UInt16(bigEndian: addr.sin_port))

        var options = WebSocketClientOptions()
        options.handshakeTimeout = .milliseconds(300)
        let handler = RecordingClient()
        let client = try WebSocketClient(handler: handler, options: options)
        var results: [String: WebSocketClientError] = [:]
        let cases = [
            "malformed": "ws://",
            "scheme": "http://127.0.0.1/",
            "dns": "ws://nosuchhost.invalid/ws",
            "refused": "ws://127.0.0.1:\(refusedPort)/ws",
            "rejected": "ws://127.0.0.1:\(harness.port)/not-a-route",
            "timeout": "ws://127.0.0.1:\(silentPort)/ws",
        ]
        for (name, url) in cases {
            client.connect(to: url) { result in
                if case .failure(let error) = result { results[name] = error } else { Issue.record("\(name) opened") }
            }
        }
        try client.run()
        guard case .invalidURL? = results["malformed"] else { Issue.record("malformed: \(String(describing: results["malformed"]))"); return }
        #expect(results["scheme"] == .unsupportedScheme("http"))
        guard case .hostNotFound(let host, _)? = results["dns"] else { Issue.record("dns: \(String(describing: results["dns"]))"); return }
        #expect(host == "nosuchhost.invalid")
        #expect(results["refused"] == .connectionRefused(host: "127.0.0.1", port: refusedPort))
        guard case .handshakeRejected(let status, let body)? = results["rejected"] else {
            Issue.record("rejected: \(String(describing: results["rejected"]))"); return
        }
        #expect(status == 404)
        #expect(body.contains("no such path"))
        #expect(results["timeout"] == .handshakeTimeout)
        #expect(handler.opened == 0)
    }

    @Test("a 16 MiB message goes out and comes back intact")
    func largeMessage() throws {
        var serverOptions = WebSocketOptions()
        serverOptions.maxMessageSize = 32 << 20
        let harness = try ServerHarness(options: serverOptions, handler: EchoHandler())
        defer { harness.stop() }
        // Cheap and deterministic (a debug build makes 16 Mi of them): a
        // multiplicative hash of the index, whose bytes do not repeat in step.
        let payload = (0..<(16 << 20)).map { (i: Int) in UInt8(truncatingIfNeeded: (i &* 2_654_435_761) >> 11) }
        let handler = RecordingClient()
        handler.greeting = payload
        handler.closeAfterEcho = true
        var options = WebSocketClientOptions()
        options.maxMessageSize = 32 << 20
        _ = try runClient(handler, options: options, urls: ["ws://127.0.0.1:\(harness.port)/ws"])
        #expect(handler.messages.count == 1)
        // Compared as a Bool: a failing #expect would print 16 MiB of bytes.
        let intact = handler.messages.first?.1 == payload
        #expect(intact)
        #expect(handler.closes.first?.0 == 1000)
    }

    @Test("1,000 client connections from one loop, each echoed and closed")
    func thousandConnections() throws {
        raiseOpenFileLimit()
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let handler = RecordingClient()
        handler.greeting = Array("hello".utf8)
        handler.closeAfterEcho = true
        let results = try runClient(handler, urls: Array(repeating: "ws://127.0.0.1:\(harness.port)/ws", count: 1000))
        #expect(results.count == 1000)
        let failures = results.compactMap { failureOf($0) }
        #expect(failures.isEmpty, "\(failures.count) failed, first: \(String(describing: failures.first))")
        #expect(handler.opened == 1000)
        #expect(handler.messages.count == 1000)
        #expect(handler.closes.filter { $0.0 == 1000 }.count == 1000)
    }

    @Test("a client and a server share one loop (one context); the same handler type serves both roles")
    func sharedLoop() throws {
        let server = try WebSocketServer(handler: EchoHandler())
        server.route(webSocket: "/ws")
        let port = try server.listen(host: "127.0.0.1", port: 0)
        let handler = EchoBackClient()
        let client = try WebSocketClient(handler: handler, loop: server.loop)
        var opened = false
        client.connect(to: "ws://127.0.0.1:\(port)/ws") { result in
            guard case .success(let connection) = result else { Issue.record("\(result)"); return }
            opened = true
            connection.send(text: "ping-pong")
        }
        handler.onClose = { [unowned client, unowned server] in
            // A client on a shared loop gives the loop's state back before the loop closes.
            client.shutdown()
            server.shutdown()
        }
        try server.run()
        #expect(opened)
        #expect(handler.received == ["ping-pong"])
    }
}

/// Closes after the first echo and lets the test stop the shared loop's server.
final class EchoBackClient: WebSocketHandler {
    var received: [String] = []
    var onClose: () -> Void = {}
    func didReceive(_ connection: WebSocketConnection<EchoBackClient>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        received.append(String(decoding: chunk, as: UTF8.self))
        connection.close()
    }
    func didClose(_ connection: WebSocketConnection<EchoBackClient>, code: CloseCode, reason: String) {
        onClose()
    }
}


/// A handler that keeps typed state in each connection (`connection.data`),
/// the same handler type on both ends of one loop.
final class CountingHandler: WebSocketHandler {
    struct Tally { var messages = 0; var bytes = 0 }
    typealias ConnectionData = Tally
    var finalTallies: [Int] = []
    var onClientClose: () -> Void = {}

    func didOpen(_ connection: WebSocketConnection<CountingHandler>) {
        connection.data = Tally()
        if connection.client != nil { for i in 1...3 { connection.send(text: String(repeating: "x", count: i)) } }
    }
    func didReceive(_ connection: WebSocketConnection<CountingHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        connection.data!.bytes += chunk.count
        if isFinal { connection.data!.messages += 1 }
        if connection.server != nil {
            connection.send(chunk, type: type, isFinal: isFinal)
        } else if connection.data!.messages == 3 {
            connection.close()
        }
    }
    func didClose(_ connection: WebSocketConnection<CountingHandler>, code: CloseCode, reason: String) {
        finalTallies.append(connection.data?.messages ?? -1)
        finalTallies.append(connection.data?.bytes ?? -1)
        if connection.client != nil { onClientClose() }
    }
}

@Suite("Typed per-connection data")
struct ConnectionDataTests {
    @Test("each connection carries its handler's typed state, in both roles on one loop")
    func typedData() throws {
        let serverHandler = CountingHandler()
        let server = try WebSocketServer(handler: serverHandler)
        server.route(webSocket: "/ws")
        let port = try server.listen(host: "127.0.0.1", port: 0)
        let clientHandler = CountingHandler()
        let client = try WebSocketClient(handler: clientHandler, loop: server.loop)
        clientHandler.onClientClose = { [unowned client, unowned server] in
            client.shutdown()
            server.shutdown()
        }
        client.connect(to: "ws://127.0.0.1:\(port)/ws") { result in
            if case .failure(let error) = result { Issue.record("\(error)") }
        }
        try server.run()
        // Three messages of 1, 2 and 3 bytes each way.
        #expect(clientHandler.finalTallies == [3, 6])
        #expect(serverHandler.finalTallies == [3, 6])
    }
}

@Suite("WebSocketClient.whenIdle")
struct ClientIdleTests {
    @Test("whenIdle runs once the last socket has closed, after the closing handshake's didClose")
    func idleAfterSocketClose() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let handler = RecordingClient()
        handler.greeting = [7]
        handler.closeAfterEcho = true
        let client = try WebSocketClient(handler: handler)
        var events: [String] = []
        client.connect(to: "ws://127.0.0.1:\(harness.port)/ws") { [unowned client] result in
            guard case .success = result else { Issue.record("\(result)"); return }
            events.append("open")
            client.whenIdle { [unowned client] in
                events.append("idle with \(client.connectionCount) connections, \(handler.closes.count) closes heard")
            }
        }
        try client.run()
        #expect(events == ["open", "idle with 0 connections, 1 closes heard"])
    }

    @Test("a connection whose reading is paused keeps run() going until it resumes, closes, and then run() returns")
    func pausedReadingKeepsTheLoop() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let handler = PausingClient()
        let started = Date()
        let client = try WebSocketClient(handler: handler)
        client.connect(to: "ws://127.0.0.1:\(harness.port)/ws") { _ in }
        try client.run()
        // The echo waited in the kernel while reading was paused; the timer
        // that resumed it does not keep the loop running by itself.
        #expect(handler.received == [[7]])
        #expect(Date().timeIntervalSince(started) >= 0.3)
        #expect(handler.closes == [1000])
    }
}

/// Pauses reading as it opens, sends one message, resumes 300 ms later from
/// an unreferenced timer, and closes once the echo is in.
final class PausingClient: WebSocketHandler {
    var received: [[UInt8]] = []
    var closes: [UInt16] = []
    var timer: UVKit.Timer?

    func didOpen(_ connection: WebSocketConnection<PausingClient>) {
        connection.pauseReading()
        connection.send(binary: [7])
        let timer = UVKit.Timer(loop: connection.eventLoop)
        timer.start(timeout: 300, repeat: 0) { connection.resumeReading() }
        timer.unref()
        self.timer = timer
    }

    func didReceive(_ connection: WebSocketConnection<PausingClient>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        received.append(Array(message))
        connection.close()
    }

    func didClose(_ connection: WebSocketConnection<PausingClient>, code: CloseCode, reason: String) {
        closes.append(code.rawValue)
        timer?.close()
        timer = nil
    }
}
