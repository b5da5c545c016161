import UVKit
import WebSocketCore

/// What every WebSocket connection on one loop shares, server-side or
/// client-side: the receive ring, the leftover pool, the cork, the timing wheel
/// and the end-of-iteration flush. One per loop, made by the first server or
/// client that runs on it (`acquire`) and closed by the last (`release`).
///
/// Loop thread only. Its buffers live until the last connection that uses them
/// is gone: connections hold their endpoint, which holds this context.
package final class LoopContext {
    package let loop: EventLoop

    /// Where every WebSocket read of this loop lands, parsed in place while the
    /// read callback runs and empty between callbacks. One per loop rather than
    /// one per connection, so a large read size costs nothing per connection.
    /// Twice `receiveBufferSize` (`ringCapacity(receiveBufferSize:)`).
    @exclusivity(unchecked) package var readRing: ByteRing
    /// Small rings for what a read leaves unparsed: a partial frame header or
    /// control frame (payloads stream out as they arrive), at most 131 bytes.
    /// A connection holds one only while such a remainder waits for its next
    /// read, so an idle connection holds none.
    package let leftoverPool = RingPool(ringCapacity: ByteRing.minimumCapacity)
    /// Bytes nobody keeps past the call that wrote them: reads that a draining
    /// connection discards (it only waits for the peer's FIN), and client
    /// frames masked on their way to the socket.
    package let scratch: UnsafeMutableRawBufferPointer
    /// Masking keys for client-role frames (RFC 6455 §10.3: unpredictable),
    /// drawn from OpenSSL's CSPRNG 1 KiB at a time for every connection here.
    @exclusivity(unchecked) package var maskKeys = MaskKeyGenerator()

    // The cork: frames produced while read callbacks run are gathered here and
    // written with one system call when the connection changes or, at the
    // latest, when the poll phase ends (the check handle). libuv reads one
    // stream up to 32 times in a row, so the echo of a large message read in
    // ring-sized pieces leaves in cork-sized writes, not one write per piece.
    // Owned by one connection at a time.
    let corkStorage: UnsafeMutableRawPointer
    let corkCapacity = 64 * 1024
    @exclusivity(unchecked) var corkCount = 0
    /// Not counted: a connection leaves the cork (`forgetCork`) before it is
    /// freed. `Unmanaged`, so that comparing it (`corkIsOwned(by:)`) and
    /// lending it to write the cork take no retain and release per message.
    @exclusivity(unchecked) var corkOwner: Unmanaged<AnyWebSocketConnection>?
    /// Read callbacks running: frames wait in the cork for the check handle.
    /// Outside them (a timer, `execute`, a close callback) nothing would flush
    /// before the loop blocks again, so a corked frame is written at once.
    @exclusivity(unchecked) var corkDepth = 0
    /// What the cork gathers are replies to reads (a read callback's), so a
    /// queue past its limit stops reading from that peer; false in
    /// `corkBatch`.
    @exclusivity(unchecked) var corkHoldsReplies = true
    /// The thread that began the cork (the loop's): the short-frame fast
    /// path checks it instead of the loop's running thread, which is a load
    /// further away.
    @exclusivity(unchecked) var corkThread: UInt = 0

    // Deadlines: one coarse timer sweeping a wheel of connection slots.
    @exclusivity(unchecked) package var wheel: TimingWheel
    /// Who owns each wheel slot; not counted (a connection is held by its
    /// connection until its close callback, where it gives the slot back).
    private var timed = SlotTable<Unmanaged<AnyWebSocketConnection>>()
    private var expired: [Int32] = []
    private let sweepTimer: Timer
    private let flushCheck: IterationHook
    /// Servers and clients on the loop, and their connections until each
    /// one's close callback: a connection can outlive its owner (a client
    /// released while its connections close), and its last callbacks use
    /// the wheel and the rings.
    private var users = 0
    /// Connections whose application holds their reading (`pauseReading`).
    /// A held connection's handle is not active, so libuv would end `run()`
    /// with it still open; while any is held, the flush hook is referenced
    /// and keeps the loop running.
    private var readingHolds = 0
    /// A larger ring asked for while a read was being parsed in the ring (a
    /// client made in a handler): it is applied after the poll phase, since
    /// the running read's chunk points into the ring.
    private var pendingRingCapacity = 0
    /// TLS's per-loop BIO and buffers, once a TLS connection needs them.
    var tlsLoop: TLSLoop?
    /// Publications staged for the end of this turn (`PublicationStaging`).
    @exclusivity(unchecked) var staging = PublicationStaging()

    private init(loop: EventLoop, receiveBufferSize: Int, granularity: UInt64) {
        self.loop = loop
        readRing = ByteRing(capacity: Self.ringCapacity(receiveBufferSize: receiveBufferSize))
        scratch = .allocate(byteCount: 64 * 1024, alignment: 16)
        corkStorage = .allocate(byteCount: 64 * 1024, alignment: 16)
        loop.updateTime()
        wheel = TimingWheel(granularity: granularity, now: loop.now)
        sweepTimer = Timer(loop: loop)
        flushCheck = IterationHook(loop: loop, phase: .afterPoll)
        sweepTimer.start(timeout: granularity, repeat: granularity) { [unowned self] in sweep() }
        // Neither keeps the loop running on its own.
        sweepTimer.unref()
        flushCheck.start { [unowned self] in
            flushCork()
            if !staging.isEmpty { writeStaged() }
            if pendingRingCapacity > 0 { growRing() }
        }
        flushCheck.unref()
    }

    /// A connection's application began holding its reading.
    func readingHoldBegan() {
        readingHolds += 1
        if readingHolds == 1 { flushCheck.ref() }
    }

    /// A hold ended: released, or its connection resumed or closed.
    func readingHoldEnded() {
        readingHolds -= 1
        if readingHolds == 0 { flushCheck.unref() }
    }

    deinit {
        scratch.deallocate()
        corkStorage.deallocate()
        readRing.deallocate()
        maskKeys.deallocate()
        leftoverPool.deallocateAll()
        staging.deallocate()
    }

    /// The loop's context, made on first use. Every `acquire` is paired with a
    /// `release`; the last release closes the context's handles.
    ///
    /// - Parameters:
    ///   - receiveBufferSize: the ring grows to the largest size any user asks.
    ///   - granularity: the wheel's tick, set by the first user (an eighth of
    ///     its shortest period), since a wheel cannot change it with entries in.
    package static func acquire(on loop: EventLoop, receiveBufferSize: Int, granularity: UInt64) -> LoopContext {
        let context: LoopContext
        if let existing = loop.runtimeContext as? LoopContext {
            context = existing
            let capacity = ringCapacity(receiveBufferSize: receiveBufferSize)
            if capacity > context.readRing.capacity {
                context.pendingRingCapacity = max(context.pendingRingCapacity, capacity)
                // Outside a read the ring is empty and nobody points into it.
                if context.corkDepth == 0 { context.growRing() }
            }
        } else {
            context = LoopContext(loop: loop, receiveBufferSize: receiveBufferSize, granularity: granularity)
            loop.runtimeContext = context
        }
        context.users += 1
        return context
    }

    /// The ring for a receive buffer size: twice it. A frame whose payload is
    /// the whole `receiveBufferSize` then arrives with its header in one read
    /// and is handed out in one chunk, and its echo leaves as one frame in one
    /// `writev`; with a ring of just that size the 14-byte header pushes the
    /// payload's end into a second read, and the reply into two frames and two
    /// writes. A read that does not fill its buffer also tells libuv that the
    /// socket is drained, which saves the `read` that would return EAGAIN.
    /// Payloads still stream through the ring, so a chunk is at most the ring.
    package static func ringCapacity(receiveBufferSize: Int) -> Int { receiveBufferSize &* 2 }

    /// Replaces the ring with one of the pending size; only where no read is
    /// being parsed (the ring is empty between reads).
    private func growRing() {
        guard pendingRingCapacity > readRing.capacity else {
            pendingRingCapacity = 0
            return
        }
        readRing.deallocate()
        readRing = ByteRing(capacity: pendingRingCapacity)
        pendingRingCapacity = 0
    }

    /// A connection's share: the context's handles stay open until its close
    /// callback, even if its server or client has gone. Paired with `release`.
    package func addUser() { users += 1 }

    /// Servers, clients and connections holding this context (for a test's
    /// diagnosis of a loop that would not close).
    package var userCount: Int { users }

    package func release() {
        users -= 1
        guard users == 0 else { return }
        flushCork()
        sweepTimer.close()
        flushCheck.close()
        tlsLoop?.close()
        tlsLoop = nil
        if loop.runtimeContext === self { loop.runtimeContext = nil }
    }

    // MARK: Deadlines

    func reserveSlot(for connection: AnyWebSocketConnection) -> Int32 {
        let slot = timed.insert(Unmanaged.passUnretained(connection))
        wheel.reserve(slots: timed.capacity)
        return slot
    }

    func freeSlot(_ slot: Int32) {
        wheel.cancel(slot)
        timed.remove(at: slot)
    }

    /// Writes every connection's staged publications, one `writev` each. A
    /// connection is alive here: a close started this turn ends in the close
    /// callbacks, which run after this phase.
    func writeStaged() {
        var index = 0
        while index < staging.slotCount {
            timed[staging.slot(at: index)]?._withUnsafeGuaranteedRef { connection in
                if connection.hasStaged { connection.writeStaged() }
            }
            index += 1
        }
        staging.reset()
    }

    /// Whether a read callback (or an inbox batch) is running: staged
    /// publications are written when it ends, after the poll phase.
    package var isInCallback: Bool { corkDepth > 0 }

    /// Stages a frame for this turn; nil when it is too large to stage or the
    /// turn's arena is full (the caller writes at once instead).
    package func stageFrame(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> StagedFrame? {
        guard corkDepth > 0, header.count + payload.count <= PublicationStaging.largestStaged,
              let offset = staging.stage(header: header, payload: payload) else { return nil }
        return StagedFrame(offset: offset, length: Int32(header.count + payload.count))
    }

    /// The bytes of a frame staged this turn.
    func bytes(of frame: StagedFrame) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: staging.arena + Int(frame.offset), count: Int(frame.length))
    }

    private func sweep() {
        let now = loop.now
        wheel.sweep(now: now, into: &expired)
        for slot in expired {
            timed[slot]?._withUnsafeGuaranteedRef { $0.deadlineReached(now: now) }
        }
        expired.removeAll(keepingCapacity: true)
    }
}
