import UVKit
import WebSocketCore

/// Raw mode: a plain TCP stream for the framing-free ceiling (the raw libuv
/// echo). No handshake and no frames: every `size` bytes of the echo is one
/// message, checked like the WebSocket ones.
final class RawStream: TCPStream {
    unowned(unsafe) let owner: BenchConnection
    var ring: ByteRing
    var queue: SendQueue
    var writing = false
    var connected = false

    init(owner: BenchConnection, loop: EventLoop, size: Int) {
        self.owner = owner
        ring = ByteRing(capacity: 64 * 1024)
        queue = SendQueue(capacity: max(4096, min(size * 4, 1 << 20)))
        super.init(loop: loop)
    }

    override func didConnect(_ error: UVError?) {
        if let error {
            owner.bench.connectionFailed(owner, "connect: \(error)", .refused)
            return
        }
        setNoDelay(true)
        do { try startReading() } catch { owner.bench.connectionFailed(owner, "read: \(error)", .other); return }
        connected = true
        owner.state = .running
        owner.bench.connectionReady(owner)
    }

    override func readBuffer() -> UnsafeMutableRawBufferPointer { ring.writableRegion }

    override func didRead(_ count: Int) {
        guard count > 0 else { return }
        ring.commitWrite(count)
        while owner.state == .running {
            let (p, n) = ring.contiguousReadable(from: 0)
            if n == 0 { break }
            let take = min(n, owner.size - owner.receivedOffset)
            ring.consume(take)
            owner.received(UnsafeRawBufferPointer(start: p, count: take), isFinal: owner.receivedOffset + take == owner.size)
        }
        flush()
    }

    override func didReachEnd(_ error: UVError?) {
        if owner.state != .closed && !owner.bench.stopping {
            owner.bench.connectionFailed(owner, error.map { "read: \($0)" } ?? "server closed the connection", .closedByPeer)
        }
    }

    func enqueue(_ payload: UnsafeRawBufferPointer) {
        let p = queue.reserve(payload.count)
        p.copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        queue.pendingCount += payload.count
    }

    /// Writes what is queued: at once if the kernel takes it, else with uv_write.
    func flush() {
        guard !writing, queue.pendingCount > 0, owner.state != .closed else { return }
        let bytes = queue.swapForWrite()
        do {
            let n = try tryWrite(bytes)
            if n < bytes.count {
                writing = true
                try write(UnsafeRawBufferPointer(rebasing: bytes[n...]))
            }
        } catch {
            owner.bench.connectionFailed(owner, "write: \(error)", .other)
        }
    }

    override func didCompleteWrite(_ error: UVError?) {
        writing = false
        if let error, owner.state != .closed {
            owner.bench.connectionFailed(owner, "write: \(error)", .other)
            return
        }
        flush()
    }

    func shut() {
        stopReading()
        close()
    }

    override func didClose() {
        ring.deallocate()
        queue.deallocate()
    }
}
