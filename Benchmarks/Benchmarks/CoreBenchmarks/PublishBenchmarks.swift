import Benchmark
import Dispatch
import Foundation
import WebSocketCore
import WebSocketServer
#if canImport(Glibc)
import Glibc
#endif

/// A topic's fan-out over loopback: one publisher's messages to 100
/// subscribers of one topic. Counted for its allocations: the local publish
/// path (table look-up, framing once, each subscriber's write) allocates
/// nothing per message.
func registerPublishBenchmarks() {
    let subscribers = 100
    let messages = 1000

    Benchmark("Publish over loopback, 1k x 16 B to 100 subscribers",
              configuration: .init(scalingFactor: .one, maxIterations: 100)) { (benchmark: Benchmark, fanOut: LoopbackFanOut) in
        for _ in benchmark.scaledIterations {
            fanOut.publish(messages: messages)
        }
    } setup: {
        try LoopbackFanOut(subscribers: subscribers)
    }
}

/// Publishes every message from /pub to the topic "t"; /sub subscribes.
final class FanOutHandler: WebSocketHandler {
    func didOpen(_ connection: WebSocketConnection<FanOutHandler>) {
        if connection.path == "/sub" { connection.subscribe("t") }
    }

    func didReceive(_ connection: WebSocketConnection<FanOutHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        connection.server?.publish(chunk, type: type, to: "t")
    }
}

/// Blocking sockets with their buffers made up front: the publisher sends
/// 100 frames at a time, then each subscriber reads its 100 copies.
final class LoopbackFanOut: @unchecked Sendable {
    let publisher: Int32
    let subscribers: [Int32]
    let request: UnsafeMutableRawBufferPointer
    let reply: UnsafeMutableRawBufferPointer
    static let batch = 100

    init(subscribers count: Int) throws {
        let ready = DispatchSemaphore(value: 0)
        let portBox = Box()
        Thread.detachNewThread {
            do {
                let server = try WebSocketServer(handler: FanOutHandler())
                server.route(webSocket: "/sub")
                server.route(webSocket: "/pub")
                portBox.port = try server.listen(host: "127.0.0.1", port: 0)
                ready.signal()
                try server.run()
            } catch {
                fatalError("fan-out server: \(error)")
            }
        }
        ready.wait()
        subscribers = (0..<count).map { _ in openWebSocket(port: portBox.port, path: "/sub") }
        publisher = openWebSocket(port: portBox.port, path: "/pub")
        // Every subscription is made before the first message.
        usleep(100_000)
        var keys = MaskKeyGenerator()
        let frameSize = FrameWriter.headerLength(payloadLength: 16, masked: true) + 16
        let request = UnsafeMutableRawBufferPointer.allocate(byteCount: frameSize * Self.batch, alignment: 16)
        let payload = [UInt8](repeating: 0x42, count: 16)
        payload.withUnsafeBytes { p in
            for i in 0..<Self.batch {
                FrameWriter.writeFrame(into: request.baseAddress! + i * frameSize, opcode: .binary, fin: true, payload: p, maskKey: keys.next())
            }
        }
        self.request = request
        keys.deallocate()
        reply = .allocate(byteCount: (2 + 16) * Self.batch, alignment: 16)
    }

    func publish(messages: Int) {
        var done = 0
        while done < messages {
            var sent = 0
            while sent < request.count {
                let n = send(publisher, request.baseAddress! + sent, request.count - sent, 0)
                precondition(n > 0)
                sent += n
            }
            for fd in subscribers {
                var received = 0
                while received < reply.count {
                    let n = recv(fd, reply.baseAddress! + received, reply.count - received, 0)
                    precondition(n > 0)
                    received += n
                }
            }
            done += Self.batch
        }
    }
}
