/// When a connection needs a ping, when it is dead, and when it must next be
/// looked at: the keep-alive rules as a pure function of the clock readings, so
/// they are tested without a clock.
///
/// - A ping goes out after `interval` in which nothing was read or nothing was
///   written: proxies such as nginx time out on either direction going quiet
///   (`proxy_read_timeout` counts the server's silence).
/// - After a ping, anything read before `timeout` (a pong, or any other frame)
///   proves the peer alive; otherwise the connection is dead.
public struct KeepAlivePolicy: Sendable {
    /// 0 turns pings off.
    public var interval: UInt64
    /// 0 waits for pongs forever.
    public var timeout: UInt64

    /// Pings after `interval` ms without a frame; a peer silent for `timeout` ms after a ping is
    /// dead (0: off).
    public init(interval: UInt64, timeout: UInt64) {
        self.interval = interval
        self.timeout = timeout
    }

    /// What a deadline calls for.
    public enum Decision: Equatable, Sendable {
        case nothing
        case sendPing
        case peerIsDead
    }

    /// What to do at `now`, and when to look again (nil: never, until activity
    /// or a ping changes the inputs).
    ///
    /// - Parameters:
    ///   - now: the loop's clock, in milliseconds.
    ///   - lastRead: when bytes last arrived from the peer.
    ///   - lastWrite: when bytes were last sent to the peer.
    ///   - pingSentAt: when the unanswered ping went out, or nil.
    public func evaluate(now: UInt64, lastRead: UInt64, lastWrite: UInt64,
                         pingSentAt: UInt64?) -> (decision: Decision, nextCheck: UInt64?) {
        if let sent = pingSentAt, timeout > 0, lastRead <= sent {
            if now >= sent + timeout { return (.peerIsDead, nil) }
            // One ping at a time: the answer to this one is what we wait for.
            return (.nothing, sent + timeout)
        }
        guard interval > 0 else { return (.nothing, nil) }
        let quietSince = min(lastRead, lastWrite)
        if now >= quietSince + interval {
            // The ping itself is a write, so the next one is due an interval on,
            // and the pong deadline starts now.
            let nextPing = now + interval
            return (.sendPing, timeout > 0 ? min(nextPing, now + timeout) : nextPing)
        }
        let nextPing = quietSince + interval
        return (.nothing, nextPing)
    }
}
