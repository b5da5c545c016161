import WebSocketCore

/// Small rings shared by a loop's connections, for the unparsed remainder of a
/// read (a partial frame header or control frame). A connection holds one only
/// until its next read, so an idle connection holds no receive memory, and it
/// holds it by one pointer (8 bytes, not the ring's 40, in every connection).
package final class RingPool {
    package typealias Ring = UnsafeMutablePointer<ByteRing>
    package let ringCapacity: Int
    // Loop-thread only: no dynamic exclusivity check per take and give.
    @exclusivity(unchecked) private var free: [Ring] = []
    /// Rings kept for reuse; more are freed, so a burst's memory is given back.
    private let maxFree: Int

    init(ringCapacity: Int, maxFree: Int = 256) {
        self.ringCapacity = ringCapacity
        self.maxFree = maxFree
    }

    /// A ring with room for `count` bytes: a pooled one when it fits (the
    /// parser's rules keep a remainder under 131 bytes), else a larger one made
    /// for the occasion.
    package func take(toHold count: Int) -> Ring {
        if count <= ringCapacity, let ring = free.popLast() { return ring }
        let ring = Ring.allocate(capacity: 1)
        ring.initialize(to: ByteRing(capacity: count <= ringCapacity ? ringCapacity : ByteRing.capacity(atLeast: count)))
        return ring
    }

    /// The ring's bytes are dropped: call it when they have been consumed, or when
    /// the connection no longer reads frames.
    package func give(_ ring: Ring) {
        if free.count < maxFree && ring.pointee.capacity == ringCapacity {
            ring.pointee.reset()
            free.append(ring)
        } else {
            destroy(ring)
        }
    }

    private func destroy(_ ring: Ring) {
        ring.pointee.deallocate()
        ring.deinitialize(count: 1)
        ring.deallocate()
    }

    package func deallocateAll() {
        for ring in free { destroy(ring) }
        free.removeAll()
    }

    deinit { deallocateAll() }
}
