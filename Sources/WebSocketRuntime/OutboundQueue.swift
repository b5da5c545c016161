import WebSocketCore

/// Bytes a connection could not write at once, waiting for the socket.
///
/// Two buffers: `inFlight` is handed to libuv by `uv_write` and must not move or
/// change until its callback; `pending` collects what comes meanwhile and may
/// grow. Both are freed when they empty, so a burst's memory goes back to the
/// allocator instead of staying with an idle connection.
struct OutboundQueue {
    // Pointer and count apart, not an optional buffer pointer: 16 bytes
    // instead of 24 in every connection.
    private var inFlight: UnsafeMutableRawPointer?
    private var inFlightCount = 0
    private var pending: UnsafeMutableRawPointer?
    private var pendingCount = 0
    private var pendingCapacity = 0

    /// Bytes queued, in flight or not (`bufferedAmount`).
    var count: Int { inFlightCount + pendingCount }
    var isEmpty: Bool { inFlight == nil && pendingCount == 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if bytes.isEmpty { return }
        reserve(bytes.count)
        (pending! + pendingCount).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        pendingCount += bytes.count
    }

    /// Appends (part of) a client frame's payload masked with `key` from key
    /// byte `phase` on (RFC 6455 §5.3); the caller's bytes are not changed.
    mutating func appendMasked(_ bytes: UnsafeRawBufferPointer, key: UInt32, phase: Int = 0) {
        if bytes.isEmpty { return }
        reserve(bytes.count)
        let destination = pending! + pendingCount
        destination.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        _ = Masking.apply(key: key, phase: phase, to: destination, count: bytes.count)
        pendingCount += bytes.count
    }

    private mutating func reserve(_ extra: Int) {
        let needed = pendingCount + extra
        if needed > pendingCapacity {
            var capacity = max(pendingCapacity * 2, 4096)
            while capacity < needed { capacity *= 2 }
            let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            if let old = pending {
                grown.copyMemory(from: old, byteCount: pendingCount)
                old.deallocate()
            }
            pending = grown
            pendingCapacity = capacity
        }
    }

    /// Moves the pending bytes in flight and returns them, or nil if a write is
    /// already in flight or nothing is pending.
    mutating func takePendingForWrite() -> UnsafeRawBufferPointer? {
        guard inFlight == nil, let buffer = pending, pendingCount > 0 else { return nil }
        inFlight = buffer
        inFlightCount = pendingCount
        pending = nil
        pendingCount = 0
        pendingCapacity = 0
        return UnsafeRawBufferPointer(start: buffer, count: inFlightCount)
    }

    /// The in-flight write finished (or was cancelled): free its buffer.
    mutating func completeWrite() {
        inFlight?.deallocate()
        inFlight = nil
        inFlightCount = 0
    }

    /// Frees everything; only once libuv holds no pointer into the queue (after
    /// the write callbacks, which precede the close callback).
    mutating func deallocate() {
        completeWrite()
        pending?.deallocate()
        pending = nil
        pendingCount = 0
        pendingCapacity = 0
    }
}
