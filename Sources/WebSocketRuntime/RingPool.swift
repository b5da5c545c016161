import WebSocketCore

/// Small rings shared by a loop's connections, for the unparsed remainder of a
/// read (a partial frame header or control frame). A connection holds one only
/// until its next read, so an idle connection holds no receive memory
/// (DESIGN.md §2; issue: under 1 KiB per idle connection).
package final class RingPool {
    package let ringCapacity: Int
    // Loop-thread only: no dynamic exclusivity check per take and give.
    @exclusivity(unchecked) private var free: [ByteRing] = []
    /// Rings kept for reuse; more are freed, so a burst's memory is given back.
    private let maxFree: Int

    init(ringCapacity: Int, maxFree: Int = 256) {
        self.ringCapacity = ringCapacity
        self.maxFree = maxFree
    }

    package func take() -> ByteRing {
        free.popLast() ?? ByteRing(capacity: ringCapacity)
    }

    /// The ring's bytes are dropped: call it when they have been consumed, or when
    /// the connection no longer reads frames.
    package func give(_ ring: ByteRing) {
        if free.count < maxFree && ring.capacity == ringCapacity {
            var emptied = ring
            emptied.reset()
            free.append(emptied)
        } else {
            ring.deallocate()
        }
    }

    package func deallocateAll() {
        for ring in free { ring.deallocate() }
        free.removeAll()
    }

    deinit { deallocateAll() }
}
