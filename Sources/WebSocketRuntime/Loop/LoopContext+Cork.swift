import UVKit
import WebSocketCore

/// The cork: one 64 KiB buffer per loop that gathers the frames a connection
/// produces during read callbacks, written with one system call when another
/// connection needs it, when it is full, or when the poll phase ends. The rule
/// that keeps bytes in order: the cork may hold a connection's bytes only while
/// that connection's queue is empty.
extension LoopContext {
    /// Copies a frame into the cork (masked with `maskKey` in the client role).
    /// Returns false, copying nothing, when making room flushed the connection's
    /// own corked bytes and the kernel left some of them queued: the frame
    /// must then queue behind them.
    @inline(__always)
    func cork(_ connection: AnyWebSocketConnection, opcode: Opcode, fin: Bool, rsv: UInt8, payload: UnsafeRawBufferPointer,
              maskKey: UInt32?) -> Bool {
        // Wrapping arithmetic: a payload here is under 16 KiB and the cork
        // 64 KiB, so none of these sums can overflow, and the checks would
        // cost a branch each per message.
        let frameLength = FrameWriter.headerLength(payloadLength: payload.count, masked: maskKey != nil) &+ payload.count
        if !corkIsOwned(by: connection) || corkCount &+ frameLength > corkCapacity {
            flushCork()
            if !connection.outbound.isEmpty { return false }
            corkOwner = Unmanaged.passUnretained(connection)
        }
        corkCount &+= FrameWriter.writeFrame(into: corkStorage + corkCount, opcode: opcode, fin: fin, rsv: rsv,
                                             payload: payload, maskKey: maskKey)
        if corkDepth == 0 { flushCork() }
        return true
    }

    /// The common case of `cork`, for a server's short frame (payload under
    /// 126 bytes): inside a read callback, with the cork already this
    /// connection's and room left. Returns false, writing nothing, otherwise,
    /// and `cork` takes over. Branches and stores only, no call: most replies
    /// in a read callback after its first take this path.
    @inline(__always)
    func corkShortFrame(for connection: AnyWebSocketConnection, opcode: Opcode, fin: Bool, payload: UnsafeRawBufferPointer) -> Bool {
        let end = corkCount &+ 2 &+ payload.count
        // `corkThread`: a send from a thread other than the one whose read
        // callback holds the cork (a misuse) goes the general way, which
        // checks the thread in full and traps.
        guard corkDepth > 0, corkIsOwned(by: connection), end <= corkCapacity,
              corkThread == LoopThread.currentIdentity else { return false }
        _ = FrameWriter.writeFrame(into: corkStorage + corkCount, opcode: opcode, fin: fin, payload: payload)
        corkCount = end
        return true
    }

    /// Compares addresses: neither side is loaded, so nothing is retained.
    @inline(__always)
    func corkIsOwned(by connection: AnyWebSocketConnection) -> Bool {
        corkOwner?.toOpaque() == Unmanaged.passUnretained(connection).toOpaque()
    }

    @inline(__always) package func beginCork() {
        corkThread = LoopThread.currentIdentity
        corkDepth &+= 1
    }
    @inline(__always) package func endCork() { corkDepth &-= 1 }

    /// Gathers the frames `body` sends into the cork, written with one system
    /// call when it returns: sends that cross from other threads in a batch
    /// (the async face's) leave in one write, not one per message. Unlike a
    /// read callback's cork, a queue past its limit here does not stop
    /// reading: these bytes are not replies to what was read, and their
    /// senders wait for room themselves.
    package func corkBatch(_ body: () -> Void) {
        let holdsReplies = corkHoldsReplies
        corkHoldsReplies = false
        beginCork()
        body()
        endCork()
        corkHoldsReplies = holdsReplies
        if corkDepth == 0 { flushCork() }
    }

    /// Hands over what is corked for `connection` (to go first in its next
    /// write); valid until the cork is next written.
    func takeCorked(for connection: AnyWebSocketConnection) -> UnsafeRawBufferPointer {
        if !corkIsOwned(by: connection) {
            flushCork()
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        let bytes = UnsafeRawBufferPointer(start: corkStorage, count: corkCount)
        corkCount = 0
        corkOwner = nil
        return bytes
    }

    /// Writes what is corked. The check handle calls it once per loop
    /// iteration, after the poll phase; a send made outside a read callback
    /// (a timer, `execute`) calls it too, so its bytes do not wait a turn.
    package func flushCork() {
        guard let owner = corkOwner else { return }
        let count = corkCount
        corkCount = 0
        corkOwner = nil
        if count > 0 {
            // The owner stays alive through this: a failed write closes its
            // handle, and it is freed only in the close callback.
            owner._withUnsafeGuaranteedRef { owner in
                owner.writeNow(UnsafeRawBufferPointer(start: corkStorage, count: count))
                _ = owner.checkBackpressure()
            }
        }
    }

    func flushCork(ifOwner connection: AnyWebSocketConnection) {
        if corkIsOwned(by: connection) { flushCork() }
    }

    /// Drops what is corked for a connection that is closing.
    func forgetCork(_ connection: AnyWebSocketConnection) {
        if corkIsOwned(by: connection) {
            corkCount = 0
            corkOwner = nil
        }
    }
}
