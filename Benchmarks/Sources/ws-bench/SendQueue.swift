/// Bytes waiting for the socket: `pending` fills while `inFlight` is with libuv.
/// Grows as needed and keeps its capacity (the load generator reuses it).
struct SendQueue {
    var pending: UnsafeMutableRawPointer
    var pendingCount = 0
    var pendingCapacity: Int
    var inFlight: UnsafeMutableRawPointer
    var inFlightCapacity: Int
    var inFlightCount = 0

    init(capacity: Int) {
        pendingCapacity = capacity
        inFlightCapacity = capacity
        pending = .allocate(byteCount: capacity, alignment: 16)
        inFlight = .allocate(byteCount: capacity, alignment: 16)
    }

    /// Room for `n` more bytes at the end of `pending`.
    mutating func reserve(_ n: Int) -> UnsafeMutableRawPointer {
        if pendingCount + n > pendingCapacity {
            var capacity = pendingCapacity * 2
            while capacity < pendingCount + n { capacity *= 2 }
            let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            grown.copyMemory(from: pending, byteCount: pendingCount)
            pending.deallocate()
            pending = grown
            pendingCapacity = capacity
        }
        return pending + pendingCount
    }

    /// Swaps the buffers so that what was pending is now in flight.
    mutating func swapForWrite() -> UnsafeRawBufferPointer {
        swap(&pending, &inFlight)
        swap(&pendingCapacity, &inFlightCapacity)
        inFlightCount = pendingCount
        pendingCount = 0
        return UnsafeRawBufferPointer(start: inFlight, count: inFlightCount)
    }

    func deallocate() {
        pending.deallocate()
        inFlight.deallocate()
    }
}
