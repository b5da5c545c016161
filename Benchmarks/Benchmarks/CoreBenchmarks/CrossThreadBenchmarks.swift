import Benchmark
import Foundation
import UVKit
import WebSocketCore
import WebSocketServer

/// Sends from foreign threads into one loop through the group's door: 4
/// threads post 10,000 16-byte messages each to one connection, and the run
/// ends when a plain socket on the other end has read every frame. The
/// allocation count is that of the whole process (the loop thread's sends
/// and writes included): 0 per message is the target.
func registerCrossThreadBenchmarks() {
    let senders = 4, perSender = 10_000
    Benchmark("Cross-thread sends, 4 threads x 10k x 16 B into one loop",
              configuration: .init(scalingFactor: .one, maxDuration: .seconds(5), maxIterations: 50)) {
        (benchmark: Benchmark, rig: CrossThreadRig) in
        for _ in benchmark.scaledIterations {
            rig.run(senders: senders, perSender: perSender)
        }
    } setup: {
        try CrossThreadRig(senders: senders)
    }
}

final class OpenedConnection: WebSocketHandler, @unchecked Sendable {
    let id = Lock<ConnectionID?>(nil)
    func didOpen(_ connection: WebSocketConnection<OpenedConnection>) {
        let opened = connection.id
        id.withLock { $0 = opened }
    }
    func didReceive(_ connection: WebSocketConnection<OpenedConnection>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {}
}

/// A one-loop group, a client socket that read the handshake, and sender
/// threads that wait for each run's start.
final class CrossThreadRig: @unchecked Sendable {
    let group: WebSocketServerGroup<OpenedConnection>
    let fd: Int32
    let id: ConnectionID
    let start = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)
    let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    var perSender = 0
    let frameSize = FrameWriter.headerLength(payloadLength: 16, masked: false) + 16

    init(senders: Int) throws {
        let handler = OpenedConnection()
        group = try WebSocketServerGroup(loops: 1) { _ in handler }
        group.route(webSocket: "/ws")
        let port = try group.listen(host: "127.0.0.1", port: 0)
        let group = group
        Thread.detachNewThread { try? group.run() }
        fd = openWebSocket(port: port)
        var opened: ConnectionID?
        while opened == nil {
            opened = handler.id.withLock { $0 }
            usleep(1000)
        }
        id = opened!
        for _ in 0..<senders {
            Thread.detachNewThread { [self] in
                let payload = UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 8))
                while true {
                    start.wait()
                    for _ in 0..<perSender {
                        // Past the inbox's limit: wait for the loop to catch up.
                        while !group.send(payload, type: .binary, to: id) { sched_yield() }
                    }
                    finished.signal()
                }
            }
        }
    }

    func run(senders: Int, perSender: Int) {
        self.perSender = perSender
        for _ in 0..<senders { start.signal() }
        var remaining = senders * perSender * frameSize
        while remaining > 0 {
            let n = recv(fd, reply.baseAddress!, min(reply.count, remaining), 0)
            precondition(n > 0, "connection lost")
            remaining -= n
        }
        for _ in 0..<senders { finished.wait() }
    }
}
