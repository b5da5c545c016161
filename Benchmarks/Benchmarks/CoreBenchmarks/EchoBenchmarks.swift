import Benchmark
import Foundation
import UVKit
import WebSocketCore
import WebSocketServer

/// The full echo path, counted for allocations.
///
/// - "in memory": the core's part of an echo, 10,000 16-byte messages: the
///   state machine parses and unmasks from the ring, then the reply is framed
///   into a cork buffer.
/// - "loopback": the real server (EchoHandler on its own loop thread) echoing
///   10,000 16-byte messages to a client in this process over 127.0.0.1. The
///   malloc count covers every thread, the server's included; steady state
///   must make none per message.
func registerEchoBenchmarks() {
    let messages = 10_000
    let payloadSize = 16
    let frameSize = FrameWriter.headerLength(payloadLength: payloadSize, masked: true) + payloadSize

    Benchmark("Echo path in memory, 10k x 16 B", configuration: .init(scalingFactor: .one)) { (benchmark: Benchmark, state: (ByteRing, UnsafeMutableRawPointer)) in
        var (ring, cork) = state
        // The protocol's own receive path: the state machine over the parser.
        var machine = WebSocketStateMachine(role: .server, maxMessageSize: 1 << 20)
        let perRing = ring.capacity / frameSize
        for _ in benchmark.scaledIterations {
            var echoed = 0
            while echoed < messages {
                ring.reset()
                ring.commitWrite(min(perRing, messages - echoed) * frameSize)
                var corked = 0
                loop: while true {
                    switch machine.receive(&ring, now: 0) {
                    case .message(let chunk, let type, let isFinal):
                        corked &+= FrameWriter.writeFrame(into: cork + corked, opcode: type.opcode, fin: isFinal, payload: chunk)
                        echoed &+= 1
                    default:
                        break loop
                    }
                }
                blackHole(corked)
            }
        }
    } setup: {
        let ring = ByteRing(capacity: 64 * 1024)
        var keys = MaskKeyGenerator()
        let payload = [UInt8](repeating: 0x41, count: payloadSize)
        payload.withUnsafeBytes { p in
            for i in 0..<(ring.capacity / frameSize) {
                FrameWriter.writeFrame(into: ring.storage + i * frameSize, opcode: .binary, fin: true, payload: p, maskKey: keys.next())
            }
        }
        keys.deallocate()
        return (ring, UnsafeMutableRawPointer.allocate(byteCount: 64 * 1024, alignment: 16))
    }

    Benchmark("Echo path over loopback, 10k x 16 B", configuration: .init(scalingFactor: .one, maxIterations: 200)) { (benchmark: Benchmark, client: LoopbackEchoClient) in
        for _ in benchmark.scaledIterations {
            client.echo(messages: messages)
        }
    } setup: {
        try LoopbackEchoClient(payloadSize: payloadSize)
    }
}

/// A blocking client with buffers prepared up front, so that its own work
/// allocates nothing while measured; the server runs on a thread of its own.
final class LoopbackEchoClient: @unchecked Sendable {
    let fd: Int32
    static let batch = 100
    var batch: Int { Self.batch }
    let request: UnsafeMutableRawBufferPointer
    let reply: UnsafeMutableRawBufferPointer
    let replySize: Int

    init(payloadSize: Int) throws {
        let ready = DispatchSemaphore(value: 0)
        let portBox = Box()
        Thread.detachNewThread {
            do {
                let server = try WebSocketServer(handler: EchoHandler())
                server.route(webSocket: "/ws")
                portBox.port = try server.listen(host: "127.0.0.1", port: 0)
                ready.signal()
                try server.run()
            } catch {
                fatalError("echo server: \(error)")
            }
        }
        ready.wait()
        fd = openWebSocket(port: portBox.port)
        var keys = MaskKeyGenerator()
        let frameSize = FrameWriter.headerLength(payloadLength: payloadSize, masked: true) + payloadSize
        let request = UnsafeMutableRawBufferPointer.allocate(byteCount: frameSize * Self.batch, alignment: 16)
        self.request = request
        let payload = [UInt8](repeating: 0x42, count: payloadSize)
        payload.withUnsafeBytes { p in
            for i in 0..<Self.batch {
                FrameWriter.writeFrame(into: request.baseAddress! + i * frameSize, opcode: .binary, fin: true, payload: p, maskKey: keys.next())
            }
        }
        keys.deallocate()
        replySize = (FrameWriter.headerLength(payloadLength: payloadSize, masked: false) + payloadSize) * Self.batch
        reply = .allocate(byteCount: replySize, alignment: 16)
    }

    /// Sends `messages` in batches of 100 and reads every echo back.
    func echo(messages: Int) {
        var done = 0
        while done < messages {
            var sent = 0
            while sent < request.count {
                let n = send(fd, request.baseAddress! + sent, request.count - sent, 0)
                precondition(n > 0)
                sent += n
            }
            var received = 0
            while received < replySize {
                let n = recv(fd, reply.baseAddress! + received, replySize - received, 0)
                precondition(n > 0)
                received += n
            }
            done += batch
        }
    }
}

final class Box: @unchecked Sendable { var port = 0 }

/// A blocking socket to 127.0.0.1:`port` that has sent the opening handshake
/// for `path` and read the 101.
func openWebSocket(port: Int, path: String = "/ws") -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    precondition(rc == 0, "connect failed")
    let head = ClientHandshake.request(host: "127.0.0.1", path: path, key: AcceptKey.makeKey())
    _ = head.withCString { send(fd, $0, strlen($0), 0) }
    var response = [UInt8](repeating: 0, count: 4096)
    var got = 0
    while !String(decoding: response[0..<got], as: UTF8.self).contains("\r\n\r\n") {
        let n = response.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 4096 - got, 0) }
        precondition(n > 0, "handshake failed")
        got += n
    }
    return fd
}

/// The sample's echo: each chunk back as it came.
final class EchoHandler: WebSocketHandler {
    func didReceive(_ connection: WebSocketConnection<EchoHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        connection.send(chunk, type: type, isFinal: isFinal)
    }
}
