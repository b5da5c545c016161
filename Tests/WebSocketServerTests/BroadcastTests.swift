import Foundation
import Testing
import WebSocketCore
import WebSocketServer

/// A chat room: every whole message goes to every open connection, the sender
/// included. A message "fragment" starts a fragmented reply to its sender only
/// (and leaves it open), to test that a broadcast skips such a connection.
final class ChatHandler: WebSocketHandler {
    var lastResult = BroadcastResult()

    func didReceive(_ connection: WebSocketConnection<ChatHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        if type == .text && Array(message) == Array("fragment".utf8) {
            connection.send(message, type: .text, isFinal: false)
            return
        }
        lastResult = connection.server!.broadcast(message, type: type)
    }
}

@Suite("Broadcast over real sockets on 127.0.0.1", .serialized)
struct BroadcastTests {
    @Test("every open connection gets each message once, intact")
    func everyoneGetsEveryMessage() throws {
        let harness = try ServerHarness(handler: ChatHandler())
        defer { harness.stop() }
        let clients = try (0..<20).map { _ in try TestClient(port: harness.port) }
        // Wait until the server has all 20 open (a handshake response can
        // precede the server's bookkeeping by nothing, but be sure).
        #expect(harness.onLoop { s in var n = 0; s.forEachOpenConnection { _ in n += 1 }; return n } == 20)
        for (i, sender) in clients.enumerated() {
            let text = "message \(i) " + String(repeating: "x", count: i * 700)  // up to 13 KiB: 2- and 4-byte lengths
            try sender.sendText(text)
            for client in clients {
                #expect(try client.nextMessage() == .message(.text, Array(text.utf8)))
            }
            #expect(harness.onLoop { $0.handler.lastResult } == BroadcastResult(sent: 20))
        }
        let binary = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }  // the 8-byte length form
        try clients[3].sendFrame(.binary, binary)
        for client in clients {
            #expect(try client.nextMessage() == .message(.binary, binary))
        }
        #expect(harness.metrics.messagesSent == 21 * 20)
    }

    @Test("a connection in the middle of a fragmented message is skipped, the others get it")
    func skipsFragmentedSender() throws {
        let harness = try ServerHarness(handler: ChatHandler())
        defer { harness.stop() }
        let a = try TestClient(port: harness.port)
        let b = try TestClient(port: harness.port)
        a.setTimeout(0.5)
        try a.sendText("fragment")
        // a's reply is now an open fragmented message: its first fragment
        // arrives, then nothing (the read times out).
        #expect(throws: TestError.self) { try a.next() }
        #expect(a.partial == Array("fragment".utf8))
        try b.sendText("to all")
        #expect(try b.nextMessage() == .message(.text, Array("to all".utf8)))
        #expect(harness.onLoop { $0.handler.lastResult } == BroadcastResult(sent: 1, dropped: 1))
        // Still nothing more for a: a text frame inside its open message would
        // have made a's parser fail with 1002 instead of timing out.
        #expect(throws: TestError.self) { try a.next() }
        #expect(a.partial == Array("fragment".utf8))
    }

    @Test("a peer that stops reading is queued, then dropped, while the readers get everything")
    func slowPeerIsBounded() throws {
        var options = WebSocketOptions()
        options.maxBackpressure = 256 * 1024
        let harness = try ServerHarness(options: options, handler: ChatHandler())
        defer { harness.stop() }
        let readers = try (0..<3).map { _ in try TestClient(port: harness.port) }
        // Held open, never read from.
        let silent = try TestClient(port: harness.port)
        defer { withExtendedLifetime(silent) {} }
        let payload = (0..<(256 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        var total = BroadcastResult()
        var silentBackpressure = false
        for _ in 0..<40 {  // 10 MiB: more than loopback socket buffers hold
            let result = harness.onLoop { server in
                payload.withUnsafeBytes { server.broadcast($0, type: .binary) }
            }
            total.sent += result.sent
            total.backpressure += result.backpressure
            total.dropped += result.dropped
            if result.backpressure > 0 { silentBackpressure = true }
            // The readers keep up before the next broadcast, so only the
            // silent peer can fall behind.
            for reader in readers {
                #expect(try reader.nextMessage() == .message(.binary, payload))
            }
        }
        #expect(total.sent + total.backpressure + total.dropped == 40 * 4)
        #expect(total.dropped >= 1 && total.dropped < 40)  // only the silent peer, and only once past the cap
        #expect(silentBackpressure)
        #expect(total.sent >= 40 * 3)
    }
}
