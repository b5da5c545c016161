import WebSocketCore

/// Bytes a connection could not write at once, waiting for the socket.
///
/// Two buffers: `inFlight` is handed to libuv by `uv_write` and must not move or
/// change until its callback; `pending` collects what comes meanwhile and may
/// grow. Both are freed when they empty, so a burst's memory goes back to the
/// allocator instead of staying with an idle connection.
///
/// One pointer in every connection: the two buffers and their counts live in a
/// small block allocated with the first queued byte and freed when both
/// buffers are gone, so a connection with nothing queued (nearly all of them,
/// nearly always) pays 8 bytes for its queue, not 40. The pointer is nil
/// exactly when nothing is queued, which is the test every send makes.
struct OutboundQueue {
    private struct Buffers {
        var inFlight: UnsafeMutableRawPointer?
        var inFlightCount = 0
        var pending: UnsafeMutableRawPointer?
        var pendingCount = 0
        var pendingCapacity = 0
    }

    /// nil: nothing queued. Otherwise `inFlight` or `pending` is allocated.
    private var buffers: UnsafeMutablePointer<Buffers>?

    /// Bytes queued, in flight or not (`bufferedAmount`).
    var count: Int {
        guard let b = buffers else { return 0 }
        return b.pointee.inFlightCount &+ b.pointee.pendingCount
    }

    @inline(__always) var isEmpty: Bool { buffers == nil }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if bytes.isEmpty { return }
        let b = reserve(bytes.count)
        (b.pointee.pending! + b.pointee.pendingCount).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        b.pointee.pendingCount += bytes.count
    }

    /// Appends (part of) a client frame's payload masked with `key` from key
    /// byte `phase` on (RFC 6455 §5.3); the caller's bytes are not changed.
    mutating func appendMasked(_ bytes: UnsafeRawBufferPointer, key: UInt32, phase: Int = 0) {
        if bytes.isEmpty { return }
        let b = reserve(bytes.count)
        let destination = b.pointee.pending! + b.pointee.pendingCount
        destination.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        _ = Masking.apply(key: key, phase: phase, to: destination, count: bytes.count)
        b.pointee.pendingCount += bytes.count
    }

    private mutating func reserve(_ extra: Int) -> UnsafeMutablePointer<Buffers> {
        let b: UnsafeMutablePointer<Buffers>
        if let existing = buffers {
            b = existing
        } else {
            b = .allocate(capacity: 1)
            b.initialize(to: Buffers())
            buffers = b
        }
        let needed = b.pointee.pendingCount + extra
        if needed > b.pointee.pendingCapacity {
            var capacity = max(b.pointee.pendingCapacity * 2, 4096)
            while capacity < needed { capacity *= 2 }
            let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            if let old = b.pointee.pending {
                grown.copyMemory(from: old, byteCount: b.pointee.pendingCount)
                old.deallocate()
            }
            b.pointee.pending = grown
            b.pointee.pendingCapacity = capacity
        }
        return b
    }

    /// Moves the pending bytes in flight and returns them, or nil if a write is
    /// already in flight or nothing is pending.
    mutating func takePendingForWrite() -> UnsafeRawBufferPointer? {
        guard let b = buffers, b.pointee.inFlight == nil, let buffer = b.pointee.pending else { return nil }
        b.pointee.inFlight = buffer
        b.pointee.inFlightCount = b.pointee.pendingCount
        b.pointee.pending = nil
        b.pointee.pendingCount = 0
        b.pointee.pendingCapacity = 0
        return UnsafeRawBufferPointer(start: buffer, count: b.pointee.inFlightCount)
    }

    /// The in-flight write finished (or was cancelled): free its buffer, and
    /// the block too if nothing is pending behind it.
    mutating func completeWrite() {
        guard let b = buffers else { return }
        b.pointee.inFlight?.deallocate()
        b.pointee.inFlight = nil
        b.pointee.inFlightCount = 0
        if b.pointee.pending == nil { freeBlock(b) }
    }

    /// Frees everything; only once libuv holds no pointer into the queue (after
    /// the write callbacks, which precede the close callback).
    mutating func deallocate() {
        guard let b = buffers else { return }
        b.pointee.inFlight?.deallocate()
        b.pointee.pending?.deallocate()
        freeBlock(b)
    }

    private mutating func freeBlock(_ b: UnsafeMutablePointer<Buffers>) {
        b.deinitialize(count: 1)
        b.deallocate()
        buffers = nil
    }
}
