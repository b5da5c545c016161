/// A hashed timing wheel over small integer slots (connection ids): one coarse
/// timer per loop sweeps it, instead of a timer per connection restarted on each
/// read (each restart is a heap operation in libuv).
///
/// Each slot has at most one deadline. Buckets are intrusive doubly linked lists
/// kept in flat arrays, so scheduling, cancelling and firing allocate nothing
/// once the arrays have grown to the number of slots. A tick visits one bucket:
/// its cost grows with the deadlines that fall in it, not with the slots tracked.
///
/// Time is whatever unit the caller passes (the server uses milliseconds from
/// `uv_now`); the wheel never reads a clock.
public struct TimingWheel {
    /// The width of one slot of the wheel, in ms.
    public let granularity: UInt64
    @usableFromInline let bucketMask: Int
    @usableFromInline var bucketHeads: [Int32]
    @usableFromInline var next: [Int32] = []
    @usableFromInline var prev: [Int32] = []
    @usableFromInline var due: [UInt64] = []
    /// Bucket each slot is in, or -1.
    @usableFromInline var bucketOf: [Int32] = []
    /// The last tick already swept.
    @usableFromInline var sweptTick: UInt64
    /// Slots with a deadline on the wheel.
    public private(set) var count = 0

    /// `bucketCount` is rounded up to a power of two.
    public init(granularity: UInt64, bucketCount: Int = 4096, now: UInt64 = 0) {
        precondition(granularity > 0)
        var buckets = 1
        while buckets < bucketCount { buckets <<= 1 }
        self.granularity = granularity
        self.bucketMask = buckets - 1
        self.bucketHeads = Array(repeating: -1, count: buckets)
        self.sweptTick = now / granularity
    }

    /// Makes room for slots `0..<n`.
    public mutating func reserve(slots n: Int) {
        if n <= next.count { return }
        let extra = n - next.count
        next.append(contentsOf: repeatElement(-1, count: extra))
        prev.append(contentsOf: repeatElement(-1, count: extra))
        due.append(contentsOf: repeatElement(0, count: extra))
        bucketOf.append(contentsOf: repeatElement(-1, count: extra))
    }

    /// Whether `slot` has a deadline on the wheel.
    public func isScheduled(_ slot: Int32) -> Bool {
        Int(slot) < bucketOf.count && bucketOf[Int(slot)] >= 0
    }

    /// The deadline of `slot`, if it has one.
    public func deadline(of slot: Int32) -> UInt64? {
        isScheduled(slot) ? due[Int(slot)] : nil
    }

    /// Sets (or moves) the slot's deadline. A deadline already past fires on the
    /// next sweep.
    public mutating func schedule(_ slot: Int32, at deadline: UInt64) {
        reserve(slots: Int(slot) + 1)
        cancel(slot)
        // The first tick whose sweep is sure to be at or past the deadline: a
        // sweep for tick T runs at some time in [T·g, (T+1)·g).
        let tick = max((deadline + granularity - 1) / granularity, sweptTick + 1)
        let bucket = Int(truncatingIfNeeded: tick) & bucketMask
        let s = Int(slot)
        due[s] = deadline
        bucketOf[s] = Int32(bucket)
        prev[s] = -1
        next[s] = bucketHeads[bucket]
        if next[s] >= 0 { prev[Int(next[s])] = slot }
        bucketHeads[bucket] = slot
        count += 1
    }

    /// Takes `slot`'s deadline off the wheel.
    public mutating func cancel(_ slot: Int32) {
        let s = Int(slot)
        guard s < bucketOf.count, bucketOf[s] >= 0 else { return }
        let bucket = Int(bucketOf[s])
        if prev[s] >= 0 { next[Int(prev[s])] = next[s] } else { bucketHeads[bucket] = next[s] }
        if next[s] >= 0 { prev[Int(next[s])] = prev[s] }
        bucketOf[s] = -1
        next[s] = -1
        prev[s] = -1
        count -= 1
    }

    /// Removes every slot whose deadline is at or before `now` and appends it to
    /// `expired` (which the caller reuses, so it stops allocating once grown).
    /// Visits only the buckets of the ticks passed since the last sweep (all of
    /// them at most once, even after a long stall).
    public mutating func sweep(now: UInt64, into expired: inout [Int32]) {
        let nowTick = now / granularity
        if nowTick <= sweptTick { return }
        let ticks = min(nowTick - sweptTick, UInt64(bucketMask + 1))
        var tick = nowTick - ticks + 1
        while tick <= nowTick {
            let bucket = Int(truncatingIfNeeded: tick) & bucketMask
            var slot = bucketHeads[bucket]
            while slot >= 0 {
                let following = next[Int(slot)]
                // Entries for a later turn of the wheel stay where they are.
                if due[Int(slot)] <= now {
                    cancel(slot)
                    expired.append(slot)
                }
                slot = following
            }
            tick += 1
        }
        sweptTick = nowTick
    }
}
