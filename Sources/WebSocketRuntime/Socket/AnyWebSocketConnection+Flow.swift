import UVKit
import WebSocketCore

/// Flow control: the queue's backpressure, which stops reading from a peer
/// whose replies pile up, and the application's hold on reading.
extension AnyWebSocketConnection {
    /// Past `maxBackpressure`, reading from this peer stops when the queue grew
    /// from replies to what we read: a peer that sends without reading can then
    /// not make an echo grow our memory past the limit plus a ring.
    @inline(__always)
    package final func checkBackpressure() -> SendStatus {
        // Nothing queued, the usual case after a send: no limit can be passed.
        if outbound.isEmpty { return .sent }
        return checkQueuedBackpressure()
    }

    final func checkQueuedBackpressure() -> SendStatus {
        if outbound.count > maxBackpressure {
            owesDrainEvent = true
            // Stopping reads bounds what a handler that replies to what it
            // reads (an echo) can queue for a peer that does not read, so it
            // applies when the bytes are such replies: sent inside a read
            // callback. Sends from elsewhere (a message sent from didOpen, a
            // timer's broadcast) are bounded by the hard cap instead; stopping
            // for them gains nothing and deadlocks two ends that each sent one
            // message larger than the limit, each waiting for the other to read.
            if !pausedForBackpressure && contextRef._withUnsafeGuaranteedRef({ $0.corkDepth > 0 && $0.corkHoldsReplies }) {
                pausedForBackpressure = true
                stopReading()
                readingPausedForBackpressure()
            }
            return .backpressure
        }
        return .sent
    }

    /// True if bytes are queued, and `queueDidDrain` then follows once they
    /// are written (a streamed HTTP body waits for that before its next piece).
    final func notifyWhenQueueDrains() -> Bool {
        if outbound.isEmpty || writesClosed { return false }
        owesDrainEvent = true
        return true
    }

    /// Reading resumes (after a pause for backpressure, or the application's
    /// hold) for a connection that must see the peer's FIN or close frame.
    package final func resumeReadingForClose() {
        pausedForBackpressure = false
        endReadingHold()
        try? startReading()
    }

    /// The application stops reading from this peer until `releaseReading`.
    /// Bytes of the read being parsed are still delivered (at most one read
    /// more); the kernel's buffer then fills and TCP's window stops the peer.
    package final func holdReading() {
        if readingHeld || writesClosed { return }
        readingHeld = true
        context.readingHoldBegan()
        stopReading()
    }

    /// The application's hold is over (released, resumed or closed): the
    /// loop no longer runs for it alone.
    final func endReadingHold() {
        guard readingHeld else { return }
        readingHeld = false
        context.readingHoldEnded()
    }

    /// Ends the application's hold; reading restarts unless the queue still
    /// holds it paused for backpressure (then its drain restarts it).
    package final func releaseReading() {
        guard readingHeld else { return }
        endReadingHold()
        if !pausedForBackpressure && !writesClosed { try? startReading() }
    }
}
