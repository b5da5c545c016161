import Foundation
import Testing
import WebSocketCore
import WebSocketServer

@Suite("Echo over real sockets on 127.0.0.1", .serialized)
struct EchoTests {
    @Test("handshake, then text and binary echo")
    func textAndBinary() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let client = try TestClient(port: harness.port)
        try client.sendText("Hello, UVWebSocket")
        #expect(try client.nextMessage() == .message(.text, Array("Hello, UVWebSocket".utf8)))
        let binary = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 31) }
        try client.sendFrame(.binary, binary)
        #expect(try client.nextMessage() == .message(.binary, binary))
        try client.sendFrame(.text, [])
        #expect(try client.nextMessage() == .message(.text, []))
    }

    @Test("a frame sent in the same TCP segment as the upgrade request is echoed")
    func frameInHandshakeSegment() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        // Mask by hand: the client's own encoder is not set up before init.
        let masked: [UInt8] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        let many = Array((0..<800).map { _ in masked }.joined())  // also more than a 4 KiB ring holds
        let client = try TestClient(port: harness.port, extraRequestBytes: masked + many)
        for _ in 0..<801 {
            #expect(try client.nextMessage() == .message(.text, Array("Hello".utf8)))
        }
    }

    @Test("two clients dripping frames byte by byte, interleaved, share the loop's ring without mixing")
    func interleavedDripFeed() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let a = try TestClient(port: harness.port)
        let b = try TestClient(port: harness.port)
        // Each stream has a fragmented text message with a ping inside it, and a
        // binary message: partial headers and control frames wait between reads.
        func stream(_ c: TestClient, _ tag: String) -> [UInt8] {
            c.encodeFrame(.text, Array("\(tag) first".utf8), fin: false) + c.encodeFrame(.ping, Array("\(tag)?".utf8))
                + c.encodeFrame(.continuation, Array(" \(tag) second".utf8))
                + c.encodeFrame(.binary, (0..<130).map { UInt8(truncatingIfNeeded: $0 &+ Int(tag.utf8.first!)) })
        }
        let sa = stream(a, "A"), sb = stream(b, "B")
        for i in 0..<max(sa.count, sb.count) {
            if i < sa.count { try a.send([sa[i]]) }
            if i < sb.count { try b.send([sb[i]]) }
            usleep(300)  // most bytes then arrive in reads of their own
        }
        for (c, tag) in [(a, "A"), (b, "B")] {
            #expect(try c.next() == .pong(Array("\(tag)?".utf8)))
            #expect(try c.nextMessage() == .message(.text, Array("\(tag) first \(tag) second".utf8)))
            #expect(try c.nextMessage() == .message(.binary, (0..<130).map { UInt8(truncatingIfNeeded: $0 &+ Int(tag.utf8.first!)) }))
        }
    }

    @Test("fragmented messages come back whole, with pings between fragments answered")
    func fragmentsWithPings() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let client = try TestClient(port: harness.port)
        try client.sendFrame(.text, Array("frag".utf8), fin: false)
        try client.sendFrame(.ping, Array("p1".utf8))
        try client.sendFrame(.continuation, Array("ment".utf8), fin: false)
        try client.sendFrame(.ping, Array("p2".utf8))
        try client.sendFrame(.continuation, Array("ed".utf8))
        var events: [TestClient.Event] = []
        while events.count < 3 { events.append(try client.next()) }
        #expect(events.contains(.pong(Array("p1".utf8))))
        #expect(events.contains(.pong(Array("p2".utf8))))
        #expect(events.contains(.message(.text, Array("fragmented".utf8))))
    }

    @Test("a 16 MiB message passes through a 4 KiB ring, checksum verified")
    func sixteenMiB() throws {
        var options = WebSocketOptions()
        options.receiveBufferSize = 4096
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        let client = try TestClient(port: harness.port, timeout: 60)
        var rng = SystemRandomNumberGenerator()
        let size = 16 * 1024 * 1024
        let payload = (0..<size / 8).flatMap { _ -> [UInt8] in withUnsafeBytes(of: rng.next() as UInt64) { Array($0) } }
        let frame = client.encodeFrame(.binary, payload)
        // Send from another thread while this one reads the echo, as a real peer would.
        let sender = Thread { try? client.send(frame) }
        sender.start()
        guard case .message(.binary, let echoed) = try client.nextMessage() else { Issue.record("no echo"); return }
        #expect(echoed.count == size)
        #expect(fnv1a(echoed) == fnv1a(payload))
    }

    @Test("messages echoed under backpressure keep their order and content (cork, queue and socket)")
    func orderUnderBackpressure() throws {
        var options = WebSocketOptions()
        options.maxBackpressure = 64 * 1024
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        let client = try TestClient(port: harness.port, timeout: 60)
        let count = 3000
        func message(_ i: Int) -> [UInt8] {
            // 6 KiB, not a multiple of anything the server buffers in.
            (0..<(6 * 1024 + i % 7)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
        }
        let frames = (0..<count).flatMap { client.encodeFrame(.binary, message($0)) }
        // The client writes everything before reading anything.
        let sender = Thread { try? client.send(frames) }
        sender.start()
        for i in 0..<count {
            let event = try client.nextMessage()
            guard event == .message(.binary, message(i)) else {
                Issue.record("message \(i) arrived wrong or out of order")
                return
            }
        }
    }

    @Test("sizes on both sides of the short-frame and by-reference limits, fragments and pings, echoed in order",
          arguments: [16 * 1024, 1024 * 1024])
    func mixedSizesInOrder(maxBackpressure: Int) throws {
        // Replies to short frames go straight into the cork while it is this
        // connection's; anything else (a first reply, a longer payload, a
        // queue) takes the general path. A burst mixes all of them in each
        // read, so the two paths alternate and must keep the bytes in order.
        var options = WebSocketOptions()
        options.maxBackpressure = maxBackpressure
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        let client = try TestClient(port: harness.port, timeout: 60)
        let sizes = [0, 1, 7, 8, 9, 16, 17, 32, 33, 64, 125, 126, 127, 1000, 16383, 16384, 70000]
        let count = 600
        func message(_ i: Int) -> [UInt8] {
            (0..<sizes[i % sizes.count]).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
        }
        var frames: [UInt8] = []
        for i in 0..<count {
            let m = message(i)
            if i % 5 == 0 && m.count >= 2 {
                // One message in two fragments: the reply's second frame is a continuation.
                frames += client.encodeFrame(.binary, Array(m[..<1]), fin: false)
                frames += client.encodeFrame(.ping, [UInt8(truncatingIfNeeded: i)])
                frames += client.encodeFrame(.continuation, Array(m[1...]))
            } else {
                frames += client.encodeFrame(i % 2 == 0 ? .binary : .text, m.map { $0 & 0x7F })
            }
        }
        let allFrames = frames
        let sender = Thread { try? client.send(allFrames) }
        sender.start()
        for i in 0..<count {
            let m = message(i)
            let expected: TestClient.Event = i % 5 == 0 && m.count >= 2
                ? .message(.binary, m) : .message(i % 2 == 0 ? .binary : .text, m.map { $0 & 0x7F })
            guard try client.nextMessage() == expected else {
                Issue.record("message \(i) (\(m.count) bytes) arrived wrong or out of order")
                return
            }
        }
    }

    @Test("ping gets a pong with the same payload; close gets the same code and reason back")
    func pingAndClose() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let client = try TestClient(port: harness.port)
        try client.sendFrame(.ping, Array("are you there".utf8))
        #expect(try client.next() == .pong(Array("are you there".utf8)))
        try client.sendClose(4001, "custom goodbye")
        #expect(try client.next() == .close(4001, "custom goodbye"))
        // The server then closes the TCP connection (RFC 6455 §7.1.1).
        #expect(client.waitForClose(timeout: 5))
    }

    @Test("protocol errors close with the RFC's code and the server keeps serving")
    func protocolErrors() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let cases: [([UInt8], UInt16)] = [
            ([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], 1002),                          // unmasked
            ([0x83, 0x80, 1, 2, 3, 4], 1002),                                             // reserved opcode
            ([0xC1, 0x80, 1, 2, 3, 4], 1002),                                             // RSV1
            ([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28], 1007),                                 // bad UTF-8
            ([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xED], 1002),                                 // close code 1005
        ]
        for (bytes, code) in cases {
            let bad = try TestClient(port: harness.port)
            try bad.send(bytes)
            #expect(try bad.next() == .close(code, ""), "\(bytes)")
            #expect(bad.waitForClose(timeout: 5))
        }
        let good = try TestClient(port: harness.port)
        try good.sendText("still here")
        #expect(try good.nextMessage() == .message(.text, Array("still here".utf8)))
    }

    @Test("a peer that disconnects mid-frame does not disturb the others")
    func disconnectMidFrame() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let steady = try TestClient(port: harness.port)
        for _ in 0..<20 {
            let quitter = try TestClient(port: harness.port)
            let frame = quitter.encodeFrame(.binary, [UInt8](repeating: 7, count: 10000))
            try quitter.send(Array(frame.prefix(5000)))
        }
        // The quitters are gone (deinit closed their sockets) halfway through frames.
        try steady.sendText("unaffected")
        #expect(try steady.nextMessage() == .message(.text, Array("unaffected".utf8)))
        // Give the server a moment to see the resets, then check its books.
        var open = 0
        for _ in 0..<50 {
            open = harness.metrics.connectionsOpen
            if open == 1 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(open == 1)
    }

    @Test("1,000 concurrent connections each echo")
    func thousandConnections() throws {
        raiseOpenFileLimit()
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        var clients: [TestClient] = []
        for _ in 0..<1000 { clients.append(try TestClient(port: harness.port)) }
        #expect(harness.metrics.webSocketsOpened == 1000)
        for (i, client) in clients.enumerated() { try client.sendText("message \(i)") }
        for (i, client) in clients.enumerated() {
            #expect(try client.nextMessage() == .message(.text, Array("message \(i)".utf8)))
        }
        #expect(harness.metrics.messagesReceived == 1000)
    }
}

/// Replies to each whole message with its length and checksum, in one frame.
final class WholeMessageHandler: WebSocketHandler {
    func didReceive(_ connection: WebSocketConnection<WholeMessageHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        connection.send(text: "\(message.count):\(fnv1a(Array(message)))")
    }
}

@Suite("Whole messages over real sockets", .serialized)
struct WholeMessageTests {
    @Test("fragmented and ring-spanning messages arrive whole, single-frame ones too")
    func wholeMessages() throws {
        let harness = try ServerHarness(handler: WholeMessageHandler())
        defer { harness.stop() }
        let client = try TestClient(port: harness.port, timeout: 30)
        try client.sendText("one frame")
        #expect(try client.nextMessage() == .message(.text, Array("9:\(fnv1a(Array("one frame".utf8)))".utf8)))
        try client.sendFrame(.binary, [1, 2, 3], fin: false)
        try client.sendFrame(.ping, [])
        try client.sendFrame(.continuation, [4, 5])
        #expect(try client.nextMessage() == .message(.text, Array("5:\(fnv1a([1, 2, 3, 4, 5]))".utf8)))
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }  // spans many 4 KiB reads
        try client.sendFrame(.binary, big)
        #expect(try client.nextMessage() == .message(.text, Array("300000:\(fnv1a(big))".utf8)))
    }
}

func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

func raiseOpenFileLimit() {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
