import Foundation
import Testing
import UVKit
import WebSocketClient
import WebSocketServer

/// Broadcasts what it receives to every open connection.
final class BroadcastHandler: WebSocketHandler {
    func didReceive(_ connection: WebSocketConnection<BroadcastHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        connection.server?.broadcast(message, type: type)
    }
}

@Suite("permessage-deflate between the server and the client over 127.0.0.1", .serialized)
struct CompressionTests {
    static let json = Array((0..<2000).map { "{\"id\":\($0),\"name\":\"item \($0)\"}," }.joined().utf8)

    @Test("both ends negotiate it; messages of every size round-trip, compressed on the wire")
    func echo() throws {
        var serverOptions = WebSocketOptions()
        serverOptions.compression = CompressionOptions()
        let harness = try ServerHarness(options: serverOptions, handler: EchoHandler())
        defer { harness.stop() }
        let handler = RecordingClient()
        var options = WebSocketClientOptions()
        options.compression = .forClient
        let client = try WebSocketClient(handler: handler, options: options)
        let messages: [[UInt8]] = [Array("hi".utf8), Self.json, Array(repeating: 0x41, count: 1_000_000), []]
        var compressed = false
        client.connect(to: "ws://127.0.0.1:\(harness.port)/ws") { result in
            guard case .success(let connection) = result else { Issue.record("\(result)"); return }
            compressed = connection.usesCompression
            for message in messages { message.withUnsafeBytes { _ = connection.send($0, type: .text) } }
            // One sent uncompressed on request.
            Self.json.withUnsafeBytes { _ = connection.send($0, type: .binary, compress: false) }
        }
        handler.closeAfter = messages.count + 1
        try client.run()
        #expect(compressed)
        #expect(handler.messages.map(\.1) == messages + [Self.json])
        // The server's received payload bytes are counted as they came on the
        // wire: a tenth of the messages' bytes, so they came compressed.
        let total = messages.map(\.count).reduce(0, +) + Self.json.count
        #expect(harness.metrics.bytesReceived < total / 10)
    }

    @Test("a broadcast reaches compressed and uncompressed peers alike")
    func broadcastMixed() throws {
        var serverOptions = WebSocketOptions()
        serverOptions.compression = CompressionOptions()
        let harness = try ServerHarness(options: serverOptions, handler: BroadcastHandler())
        defer { harness.stop() }
        // A peer that negotiated nothing, on a raw socket: it must see an
        // uncompressed frame (RSV1 clear) with the payload as sent.
        let plain = try TestClient(port: harness.port)
        let handler = RecordingClient()
        handler.closeAfterEcho = true
        var options = WebSocketClientOptions()
        options.compression = .forClient
        let client = try WebSocketClient(handler: handler, options: options)
        var opened = 0
        for _ in 0..<3 {
            client.connect(to: "ws://127.0.0.1:\(harness.port)/ws") { result in
                guard case .success(let connection) = result else { return }
                opened += 1
                if opened == 3 { Self.json.withUnsafeBytes { _ = connection.send($0, type: .text) } }
            }
        }
        try client.run()
        #expect(handler.messages.count == 3)
        #expect(handler.messages.allSatisfy { $0.0 == .text && $0.1 == Self.json })
        #expect(try plain.nextMessage() == .message(.text, Self.json))
    }
}

/// Two client connections: the first asks the chat room for a fragmented
/// reply (whose compressed first fragment may stay in the server's zlib
/// until the message ends); a moment later the second sends a message to all.
final class FragmentThenBroadcast: WebSocketHandler {
    var connections: [WebSocketConnection<FragmentThenBroadcast>] = []
    var receivedByB: [[UInt8]] = []
    weak var client: WebSocketClient<FragmentThenBroadcast>?
    var timer: UVKit.Timer?

    func didOpen(_ connection: WebSocketConnection<FragmentThenBroadcast>) {
        connections.append(connection)
        guard connections.count == 2, let loop = client?.loop else { return }
        connections[0].send(text: "fragment")
        // In a later loop iteration (sends are corked until the iteration
        // ends), once the server has surely read the first message.
        let timer = UVKit.Timer(loop: loop)
        timer.start(timeout: 300) { [unowned self] in
            connections[1].send(text: "to all")
            self.timer?.close()
        }
        self.timer = timer
    }

    func didReceive(_ connection: WebSocketConnection<FragmentThenBroadcast>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        if connection === connections[0] { return }
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        receivedByB.append(Array(message))
        client?.shutdown()
    }

    /// Lets go of the connections: they hold their endpoint, which holds
    /// this handler (a cycle AddressSanitizer reports as a leak).
    func didClose(_ connection: WebSocketConnection<FragmentThenBroadcast>, code: CloseCode, reason: String) {
        connections.removeAll { $0 === connection }
    }
}

extension CompressionTests {
    @Test("a broadcast skips a compressed peer (own context) in the middle of a fragmented message")
    func broadcastSkipsFragmentedCompressedPeer() throws {
        var serverOptions = WebSocketOptions()
        var deflate = CompressionOptions()
        deflate.ownContextTakeover = true  // each peer compressed for itself
        serverOptions.compression = deflate
        let harness = try ServerHarness(options: serverOptions, handler: ChatHandler())
        defer { harness.stop() }
        let handler = FragmentThenBroadcast()
        var options = WebSocketClientOptions()
        options.compression = .forClient
        let client = try WebSocketClient(handler: handler, options: options)
        handler.client = client
        for _ in 0..<2 { client.connect(to: "ws://127.0.0.1:\(harness.port)/ws") { _ in } }
        try client.run()
        #expect(handler.receivedByB == [Array("to all".utf8)])
        #expect(harness.onLoop { $0.handler.lastResult } == BroadcastResult(sent: 1, dropped: 1))
    }
}
