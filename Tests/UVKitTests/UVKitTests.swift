import Foundation
import Testing
import UVKit

/// A stream that records its callbacks.
final class RecordingStream: TCPStream {
    var connected: UVError?? = .none
    var writeResults: [UVError?] = []
    var closed = false
    var received = 0
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)

    override func didConnect(_ error: UVError?) { connected = .some(error) }
    override func didCompleteWrite(_ error: UVError?) { writeResults.append(error) }
    override func readBuffer() -> UnsafeMutableRawBufferPointer { buffer }
    override func didRead(_ count: Int) { received += count }
    override func didClose() {
        closed = true
        buffer.deallocate()
    }
}

@Suite("UVKit: the libuv wrapper", .serialized)
struct UVKitTests {
    @Test("an IOPiece is laid out as libuv's uv_buf_t (a gathered write passes the pieces as they are)")
    func ioPieceLayout() {
        #expect(IOPiece.matchesLibuv)
    }

    @Test("a timer fires, repeats, and the loop closes cleanly after it is closed")
    func timerFires() throws {
        let loop = try EventLoop()
        let timer = Timer(loop: loop)
        var fired = 0
        timer.start(timeout: 5, repeat: 5) {
            fired += 1
            if fired == 3 { timer.close() }
        }
        loop.run()
        #expect(fired == 3)
        try loop.close()
    }

    @Test("execute runs work from another thread on the loop thread")
    func execute() throws {
        let loop = try EventLoop()
        let keepAlive = Timer(loop: loop)
        keepAlive.start(timeout: 10_000) {}
        let result = LoopBound(Box())
        let bound = LoopBound(keepAlive)
        Thread.detachNewThread {
            loop.execute {
                result.value.value = 42
                bound.value.close()
            }
        }
        loop.run()
        #expect(result.value.value == 42)
        try loop.close()
    }

    @Test("1,000 TCP handles opened and closed leave a loop that closes with 0")
    func thousandHandles() throws {
        let loop = try EventLoop()
        var streams: [RecordingStream] = []
        for _ in 0..<1000 { streams.append(RecordingStream(loop: loop)) }
        for s in streams { s.close() }
        loop.run()
        #expect(streams.allSatisfy { $0.closed })
        try loop.close()
    }

    @Test("closing a loop with an open handle fails with EBUSY instead of leaking silently")
    func busyLoop() throws {
        let loop = try EventLoop()
        let timer = Timer(loop: loop)
        timer.start(timeout: 1_000_000) {}
        timer.unref()
        #expect(throws: UVError.busy) { try loop.close() }
        timer.close()
        loop.run()
        let rc = uv_loop_close_for_test(loop)
        #expect(rc == 0)
    }

    @Test("resolveNow gives localhost's loopback addresses, and a typed error for a name that does not exist")
    func resolveNow() throws {
        let loop = try EventLoop()
        defer { try? loop.close() }
        let addresses = try AddressResolver.resolveNow("localhost", port: 8080, on: loop)
        #expect(!addresses.isEmpty)
        #expect(addresses.allSatisfy { ["127.0.0.1:8080", "[::1]:8080"].contains("\($0)") }, "\(addresses)")
        #expect(throws: UVError.self) { try AddressResolver.resolveNow("nosuchhost.invalid", port: 1, on: loop) }
        #expect(SocketAddress.isNumeric("::1") && SocketAddress.isNumeric("10.0.0.1") && !SocketAddress.isNumeric("localhost"))
    }

    /// A connected pair on 127.0.0.1: the accepted stream (reading) and the client.
    func connectedPair(_ loop: EventLoop) throws -> (listener: TCPListener, accepted: RecordingStream, client: RecordingStream) {
        let listener = TCPListener(loop: loop)
        try listener.bind(SocketAddress(host: "127.0.0.1", port: 0))
        var accepted: RecordingStream?
        try listener.listen { _ in
            let s = RecordingStream(loop: loop)
            try? s.accept(from: listener)
            try? s.startReading()
            accepted = s
        }
        let client = RecordingStream(loop: loop)
        try client.connect(to: SocketAddress(host: "127.0.0.1", port: try listener.localAddress().port))
        while accepted == nil || client.connected == nil { loop.runNoWait() }
        #expect(client.connected! == nil)
        return (listener, accepted!, client)
    }

    /// Closes the pair's handles and checks that the loop then closes with 0.
    func closeAll(_ loop: EventLoop, _ handles: UVHandle...) throws {
        for h in handles { h.close() }
        loop.run()
        try loop.close()
    }

    @Test("a close with writes pending completes them with ECANCELED, before the close callback")
    func closeCancelsWrites() throws {
        let loop = try EventLoop()
        let (listener, accepted, client) = try connectedPair(loop)
        // 64 MiB cannot fit the socket buffers of a peer that does not read.
        let big = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 20, alignment: 8)
        big.initializeMemory(as: UInt8.self, repeating: 1)
        try accepted.write(UnsafeRawBufferPointer(big))
        #expect(accepted.writesInFlight == 1)
        var order: [String] = []
        accepted.close()
        while !accepted.closed {
            loop.runNoWait()
            if accepted.writeResults.count == 1 && order.isEmpty { order.append("write") }
        }
        order.append("close")
        #expect(accepted.writeResults == [.cancelled])
        #expect(order == ["write", "close"])
        big.deallocate()
        try closeAll(loop, client, listener)
    }

    @Test("tryWrite writes what the kernel takes and reads arrive on the other end")
    func tryWriteAndRead() throws {
        let loop = try EventLoop()
        let (listener, accepted, client) = try connectedPair(loop)
        let a: [UInt8] = Array("hello ".utf8), b: [UInt8] = Array("world".utf8)
        let n = try a.withUnsafeBytes { pa in try b.withUnsafeBytes { pb in try client.tryWrite(pa, pb) } }
        #expect(n == 11)
        while accepted.received < 11 { loop.runNoWait() }
        #expect(accepted.received == 11)
        try closeAll(loop, accepted, client, listener)
    }

    @Test("iteration hooks run once per loop iteration: timers, then before the poll, then after it")
    func iterationHooksRunEachIteration() throws {
        let loop = try EventLoop()
        let before = IterationHook(loop: loop, phase: .beforePoll)
        let after = IterationHook(loop: loop, phase: .afterPoll)
        let timer = Timer(loop: loop)
        var events: [String] = []
        before.start { events.append("before") }
        after.start { events.append("after") }
        var ticks = 0
        timer.start(timeout: 1, repeat: 1) {
            ticks += 1
            events.append("timer")
            if ticks == 3 {
                timer.close()
                before.close()
                after.close()
            }
        }
        loop.run()
        // Each timer tick is followed by the hooks of the same iteration, in order.
        let ticksAt = events.indices.filter { events[$0] == "timer" }
        for index in ticksAt.prefix(2) {
            #expect(Array(events[(index + 1)...].prefix(2)) == ["before", "after"])
        }
        #expect(ticks == 3)
        try loop.close()
    }

    @Test("UVError carries libuv's name and message")
    func errors() {
        #expect(UVError.endOfFile.name == "EOF")
        #expect(UVError.addressInUse.name == "EADDRINUSE")
        #expect(UVError.connectionReset.message.isEmpty == false)
        #expect(throws: UVError.self) { try SocketAddress(host: "not an address", port: 1) }
    }
}

final class Box: @unchecked Sendable { var value = 0 }

/// After a failed close() the loop is still open; close it for real.
func uv_loop_close_for_test(_ loop: EventLoop) -> Int32 {
    do { try loop.close(); return 0 } catch let e as UVError { return e.code } catch { return -1 }
}
