import Foundation
import Testing
import WebSocketCore
import WebSocketServer

/// Keeps the time of each event it sees.
func timed(_ client: TestClient, for seconds: Double, answerPings: Bool) throws -> [(Double, TestClient.Event)] {
    let start = Date()
    var events: [(Double, TestClient.Event)] = []
    client.setTimeout(0.05)
    while Date().timeIntervalSince(start) < seconds {
        guard let event = try? client.next() else { continue }
        events.append((Date().timeIntervalSince(start), event))
        if case .ping(let p) = event, answerPings { try client.sendFrame(.pong, p) }
        if event == .eof { break }
    }
    return events
}

@Suite("Production options over real sockets", .serialized)
struct OptionsTests {
    @Test("keepAliveInterval: an idle connection gets a ping about every interval")
    func pingsAtInterval() throws {
        var options = WebSocketOptions()
        options.keepAliveInterval = .milliseconds(200)
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        let client = try TestClient(port: harness.port)
        let events = try timed(client, for: 1.15, answerPings: true)
        let pings = events.filter { if case .ping = $0.1 { return true } else { return false } }.map { $0.0 }
        #expect(pings.count >= 4 && pings.count <= 6, "pings at \(pings)")
        #expect(pings.first.map { $0 >= 0.15 && $0 <= 0.45 } == true, "first ping at \(pings)")
        for (a, b) in zip(pings, pings.dropFirst()) {
            #expect(b - a >= 0.15 && b - a <= 0.4, "gap \(b - a)")
        }
        // The pongs were counted as proof of life and timed.
        let rtt = harness.onLoop { server -> Bool in
            var measured = false
            server.forEachOpenConnection { measured = measured || $0.roundTripTime != nil }
            return measured
        }
        #expect(rtt)
    }

    @Test("keepAliveInterval 0 sends no pings")
    func pingsOff() throws {
        var options = WebSocketOptions()
        options.keepAliveInterval = .zero
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        let client = try TestClient(port: harness.port)
        #expect(try timed(client, for: 0.6, answerPings: true).isEmpty)
    }

    @Test("keepAliveTimeout: a peer that never answers is closed with 1011 within interval + timeout")
    func deadPeer() throws {
        var options = WebSocketOptions()
        options.keepAliveInterval = .milliseconds(200)
        options.keepAliveTimeout = .milliseconds(300)
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        let silent = try TestClient(port: harness.port)
        let alive = try TestClient(port: harness.port)
        // The peer that answers keeps answering until it has shown, after the
        // silent one was closed, that it is still open and echoing: a gap in its
        // answers would let a ping of its own go unanswered (on a loaded machine
        // the gap can outlast the 300 ms timeout).
        let stillAlive = ResultBox<TestClient.Event>()
        let aliveDone = DispatchSemaphore(value: 0)
        let aliveThread = Thread {
            defer { aliveDone.signal() }
            _ = try? timed(alive, for: 1.7, answerPings: true)
            do {
                try alive.sendText("still alive")
                alive.setTimeout(5)
                while true {
                    let event = try alive.next()
                    if case .ping(let p) = event { try alive.sendFrame(.pong, p); continue }
                    stillAlive.value = event
                    return
                }
            } catch {
                stillAlive.value = .eof
            }
        }
        aliveThread.start()
        let events = try timed(silent, for: 1.5, answerPings: false)
        let close = events.first { if case .close = $0.1 { return true } else { return false } }
        #expect(close?.1 == .close(1011, "keep-alive timeout"))
        #expect((close?.0 ?? 99) <= 0.5 + 0.2 + 0.2, "closed at \(String(describing: close?.0))")
        #expect(aliveDone.wait(timeout: .now() + 10) == .success)
        #expect(stillAlive.value == .message(.text, Array("still alive".utf8)))
        #expect(harness.metrics.deadPeersClosed == 1)
    }

    @Test("handshakeTimeout: a slowloris client is dropped")
    func slowloris() throws {
        var options = WebSocketOptions()
        options.handshakeTimeout = .milliseconds(300)
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        let client = try RawClient(port: harness.port)
        let start = Date()
        try client.send("GET /ws HTTP/1.1\r\nHost: x\r\n")
        Thread.sleep(forTimeInterval: 0.1)
        try client.send("X-Slow: 1\r\n")
        #expect(client.waitForClose(timeout: 3))
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed >= 0.25 && elapsed < 1.5, "dropped after \(elapsed)")
    }

    @Test("maxMessageSize: 1009 for a message over the limit, counted across fragments")
    func messageTooBig() throws {
        var options = WebSocketOptions()
        options.maxMessageSize = 1000
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        let ok = try TestClient(port: harness.port)
        try ok.sendFrame(.binary, [UInt8](repeating: 1, count: 1000))
        #expect(try ok.nextMessage() == .message(.binary, [UInt8](repeating: 1, count: 1000)))
        let big = try TestClient(port: harness.port)
        try big.sendFrame(.binary, [UInt8](repeating: 1, count: 1001))
        #expect(try big.nextMessage() == .close(1009, ""))
        let fragmented = try TestClient(port: harness.port)
        try fragmented.sendFrame(.text, [UInt8](repeating: 0x41, count: 600), fin: false)
        try fragmented.sendFrame(.continuation, [UInt8](repeating: 0x41, count: 600))
        #expect(try fragmented.nextMessage() == .close(1009, ""))
    }

    @Test("allowedOrigins: 403 for an unlisted Origin; listed and absent origins connect")
    func origins() throws {
        var options = WebSocketOptions()
        options.allowedOrigins = ["http://good.example"]
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        _ = try TestClient(port: harness.port, origin: "http://good.example")
        _ = try TestClient(port: harness.port)
        #expect(throws: TestError.self) { _ = try TestClient(port: harness.port, origin: "http://evil.example") }
        let raw = try RawClient(port: harness.port)
        try raw.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n\r\n")
        #expect(String(decoding: try raw.receiveAll(), as: UTF8.self).hasPrefix("HTTP/1.1 403 "))
    }

    @Test("maxConnections: 503 past the limit, and room again after a close")
    func connectionLimit() throws {
        var options = WebSocketOptions()
        options.maxConnections = 2
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        var first: TestClient? = try TestClient(port: harness.port)
        let second = try TestClient(port: harness.port)
        do {
            let raw = try RawClient(port: harness.port)
            try raw.send("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(String(decoding: try raw.receiveAll(), as: UTF8.self).hasPrefix("HTTP/1.1 503 "))
        }
        try first!.sendClose(1000)
        _ = try first!.next()
        #expect(first!.waitForClose(timeout: 5))
        first = nil
        Thread.sleep(forTimeInterval: 0.1)
        let third = try TestClient(port: harness.port)
        try third.sendText("in")
        #expect(try third.nextMessage() == .message(.text, Array("in".utf8)))
        _ = second
    }

    @Test("subprotocols: the first the client offers that the server speaks; none offered still connects")
    func subprotocols() throws {
        var options = WebSocketOptions()
        options.subprotocols = ["chat", "superchat"]
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        let a = try TestClient(port: harness.port, subprotocols: ["mqtt", "superchat", "chat"])
        #expect(a.responseHead?.value("Sec-WebSocket-Protocol") == "superchat")
        let b = try TestClient(port: harness.port)
        #expect(b.responseHead?.value("Sec-WebSocket-Protocol") == nil)
        let c = try TestClient(port: harness.port, subprotocols: ["mqtt"])
        #expect(c.responseHead?.value("Sec-WebSocket-Protocol") == nil)
        let chosen = harness.onLoop { server -> [String] in
            var names: [String] = []
            server.forEachOpenConnection { names.append($0.subprotocol ?? "-") }
            return names.sorted()
        }
        #expect(chosen == ["-", "-", "superchat"])
    }

    @Test("backpressure: a peer that does not read makes send report .backpressure, then didDrain")
    func backpressureStatus() throws {
        final class Flood: WebSocketHandler, @unchecked Sendable {
            var statuses: [SendStatus] = []
            var drained = 0
            func didReceive(_ c: WebSocketConnection<Flood>, chunk: UnsafeRawBufferPointer, type: MessageType, isFinal: Bool) {
                // 16 MiB: more than loopback's socket buffers take.
                let block = [UInt8](repeating: 0x42, count: 128 * 1024)
                for _ in 0..<128 { statuses.append(c.send(binary: block)) }
            }
            func didDrain(_ c: WebSocketConnection<Flood>) { drained += 1 }
        }
        var options = WebSocketOptions()
        options.maxBackpressure = 256 * 1024
        let handler = Flood()
        let harness = try ServerHarness(options: options, handler: handler)
        defer { harness.stop() }
        let client = try TestClient(port: harness.port)
        try client.sendText("go")
        Thread.sleep(forTimeInterval: 0.3)
        let (statuses, buffered) = harness.onLoop { server -> ([SendStatus], Int) in
            var b = 0
            server.forEachOpenConnection { b = $0.bufferedAmount }
            return (handler.statuses, b)
        }
        #expect(statuses.count == 128)
        #expect(statuses.contains(.backpressure))
        // Past the hard cap (2 × maxBackpressure + the ring, twice
        // receiveBufferSize) sends are dropped, so
        // the queue never holds more than that plus one message.
        #expect(statuses.contains(.dropped))
        #expect(buffered > 256 * 1024 && buffered <= 2 * 256 * 1024 + 2 * WebSocketOptions().receiveBufferSize + 128 * 1024)
        // Now read everything: the queue drains and the handler hears of it.
        var bytes = 0
        let sent = statuses.filter { $0 != .dropped }.count
        while bytes < sent * 128 * 1024 {
            guard case .message(_, let m) = try client.nextMessage() else { break }
            bytes += m.count
        }
        #expect(bytes == sent * 128 * 1024)
        Thread.sleep(forTimeInterval: 0.1)
        #expect(harness.onLoop { _ in handler.drained } == 1)
    }

    @Test("graceful shutdown: every open client gets 1001 and run() returns with the loop closed")
    func gracefulShutdown() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        var clients: [TestClient] = []
        for _ in 0..<20 { clients.append(try TestClient(port: harness.port)) }
        let closes = ResultBox<[TestClient.Event]>()
        closes.value = []
        let lock = NSLock()
        let group = DispatchGroup()
        for client in clients {
            group.enter()
            Thread {
                let event = (try? client.nextMessage()) ?? .eof
                if case .close(let code, _) = event { try? client.sendClose(code) }
                lock.lock(); closes.value!.append(event); lock.unlock()
                group.leave()
            }.start()
        }
        harness.stop()
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(closes.value!.count == 20)
        #expect(closes.value!.allSatisfy { $0 == .close(1001, "server shutting down") })
    }
}
