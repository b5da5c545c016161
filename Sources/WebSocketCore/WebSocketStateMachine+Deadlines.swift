/// Keep-alive and the close timeout: what a connection's deadline means when it
/// comes, decided from the stamps the runtime keeps and the `now` it passes.
extension WebSocketStateMachine {
    /// What the connection must do when its deadline is reached.
    public enum DeadlineAction: Sendable, Equatable {
        /// Nothing yet; look again at `nextDeadline`.
        case none
        /// Send a ping with an empty payload (the pong deadline starts now).
        case sendPing
        /// The peer did not answer a ping within the keep-alive timeout: fail
        /// with 1011 (§7.4.1), through `fail`.
        case peerIsDead
        /// The closing handshake or the wait for the peer's FIN took longer than
        /// the close timeout: drop the TCP connection (1006 if frames were not over).
        case abort
    }

    /// The unanswered ping's time, if one is out.
    var outstandingPing: UInt64? { pingSentAt == WebSocketStateMachine.none ? nil : pingSentAt }

    /// When the runtime should next call `deadlineReached`, or nil for never
    /// (until activity or a send changes the inputs).
    public func nextDeadline(now: UInt64) -> UInt64? {
        switch currentState {
        case .open:
            return keepAlive.evaluate(now: now, lastRead: lastRead, lastWrite: lastWrite, pingSentAt: outstandingPing).nextCheck
        case .closeSent, .closed:
            return closeStartedAt &+ closeTimeout
        case .connecting:
            // The runtime times the opening handshake itself (its HTTP phase).
            return nil
        }
    }

    /// The deadline came. `readingPaused`: the runtime stopped reading from this
    /// peer (backpressure), so a pong may sit unread in the socket; the peer
    /// taking our bytes is then the proof of life, not what we read. This avoids
    /// the spurious keep-alive timeouts under load that Python websockets users
    /// report.
    public mutating func deadlineReached(now: UInt64, readingPaused: Bool = false) -> DeadlineAction {
        switch currentState {
        case .open:
            let alive = readingPaused ? max(lastRead, lastWrite) : lastRead
            if let sent = outstandingPing, alive > sent { pingSentAt = WebSocketStateMachine.none }
            switch keepAlive.evaluate(now: now, lastRead: alive, lastWrite: lastWrite, pingSentAt: outstandingPing).decision {
            case .nothing:
                return .none
            case .sendPing:
                if outstandingPing == nil { pingSentAt = now }
                lastWrite = now
                return .sendPing
            case .peerIsDead:
                return .peerIsDead
            }
        case .closeSent, .closed:
            return now >= closeStartedAt &+ closeTimeout ? .abort : .none
        case .connecting:
            return .none
        }
    }
}
