/// The WebSocket protocol of one connection, in either role, without I/O: the
/// one place that answers pings, runs the closing handshake, fails a
/// connection, tracks a fragmented send and decides keep-alive (RFC 6455 §5–7).
///
/// The runtime feeds it the bytes it read (`receive`), asks it before it frames
/// a send (`dataFrame`, `startClosing`), and asks it what a deadline means
/// (`deadlineReached`); the machine answers with small actions and the runtime
/// does the I/O. It reads no clock: every call that needs the time is given
/// `now`, so the whole protocol is tested with byte literals and numbers.
///
/// States: `connecting` (§4: the opening handshake is under way; the
/// runtime reads and writes HTTP), `open` (frames flow both ways),
/// `closeSent` (our close frame is out, §7.1.2: we wait for the peer's),
/// `closed` (frames are over, or never began: the runtime ends the TCP
/// connection). `closed` is entered once, and the moment it is entered from
/// `open` or `closeSent` is the one time the application is told how the
/// connection ended. The runtime keeps no state of its own beside these:
/// whether the socket is closing is the socket's.
public struct WebSocketStateMachine {
    /// Where the connection is in RFC 6455 §7's life.
    public enum State: Sendable, Equatable {
        /// The opening handshake (§4) is under way: no frames yet.
        case connecting
        case open
        case closeSent
        case closed
    }

    // Fields in order of size (a struct is laid out as declared, and this one
    // lives in every connection); times that may be absent use `none`.

    @usableFromInline var parser: FrameParser
    /// When bytes last arrived from the peer; the runtime stamps it per read.
    public var lastRead: UInt64
    /// When bytes last left for the peer; the runtime stamps it per write.
    public var lastWrite: UInt64
    /// When the unanswered ping went out (`none`: no ping outstanding).
    @usableFromInline var pingSentAt: UInt64 = WebSocketStateMachine.none
    @usableFromInline var closeStartedAt: UInt64 = 0
    /// The round-trip time measured by the last answered ping (`none`: never).
    @usableFromInline var measuredRoundTrip: UInt64 = WebSocketStateMachine.none
    /// A negotiated per-message extension, or nil (the usual case, which costs
    /// the receive path one test of the message's RSV bits).
    @usableFromInline var negotiated: NegotiatedExtension?
    // Keep-alive and close periods in milliseconds, 32 bits each (up to 49
    // days; longer ones are clamped): the same for every connection of an
    // endpoint, so kept small.
    @usableFromInline let keepAliveInterval: UInt32
    @usableFromInline let keepAliveTimeout: UInt32
    @usableFromInline let closeTimeoutMilliseconds: UInt32
    /// Which end this machine plays.
    public let role: Role
    @usableFromInline var currentState = State.open
    /// The last data frame we sent had FIN clear: the next one is a continuation.
    @usableFromInline var sendingFragmented = false
    /// Whether an extension was negotiated: tested per send without loading
    /// (and retaining) the reference.
    @usableFromInline var hasExtension = false
    /// The extension is producing a received message: pull its output before
    /// parsing on.
    @usableFromInline var decodingActive = false

    /// The keep-alive rules this connection applies.
    public var keepAlive: KeepAlivePolicy {
        KeepAlivePolicy(interval: UInt64(keepAliveInterval), timeout: UInt64(keepAliveTimeout))
    }
    /// How long the closing handshake and the wait for the peer's FIN may take.
    public var closeTimeout: UInt64 { UInt64(closeTimeoutMilliseconds) }

    /// Stands for an absent time.
    @usableFromInline static let none = UInt64.max

    /// The round-trip time measured by the last answered ping, in milliseconds.
    @inlinable public var roundTripTime: UInt64? {
        measuredRoundTrip == WebSocketStateMachine.none ? nil : measuredRoundTrip
    }

    /// - Parameters:
    ///   - role: server or client; a client masks what it sends (§5.3).
    ///   - maxMessageSize: a larger message fails with 1009 (§7.4.1), counted on
    ///     the bytes the application gets (after an extension's decoding).
    ///   - keepAlive: when to ping a quiet peer and give up on a silent one.
    ///   - closeTimeout: milliseconds to wait for the peer's close frame.
    ///   - messageExtension: the extension agreed in the handshake, if any.
    ///   - now: the time the connection opened.
    ///   - connecting: start in `connecting`, for a connection whose opening
    ///     handshake has not completed (a machine made once it has starts `open`).
    public init(role: Role, maxMessageSize: Int, keepAlive: KeepAlivePolicy = KeepAlivePolicy(interval: 0, timeout: 0),
                closeTimeout: UInt64 = 5000, messageExtension: (any MessageExtension)? = nil, now: UInt64 = 0,
                connecting: Bool = false) {
        self.role = role
        if connecting { currentState = .connecting }
        parser = FrameParser(role: role, maxMessageSize: UInt64(maxMessageSize))
        keepAliveInterval = UInt32(clamping: keepAlive.interval)
        keepAliveTimeout = UInt32(clamping: keepAlive.timeout)
        closeTimeoutMilliseconds = UInt32(clamping: closeTimeout)
        lastRead = now
        lastWrite = now
        if let messageExtension {
            // A shared extension: the connection holds the lender's idle marker
            // and borrows an instance per message.
            negotiated = (messageExtension as? SharedMessageExtension)?.lender.idle
                ?? NegotiatedExtension(messageExtension)
            hasExtension = true
            parser.allowedRSV = messageExtension.rsvBits
        }
    }

    /// Where the connection is in RFC 6455's life cycle.
    @inlinable public var state: State { currentState }
    /// Open: data frames may go both ways (no close sent or received).
    @inlinable public var isOpen: Bool { currentState == .open }
    /// A per-message extension was negotiated: sends go through it.
    @inlinable public var usesExtension: Bool { hasExtension }
    /// Frames may still arrive: open, or waiting for the peer's close.
    @inlinable public var readsFrames: Bool { currentState == .open || currentState == .closeSent }
    /// The opening handshake is under way (§4): the connection speaks HTTP.
    @inlinable public var isConnecting: Bool { currentState == .connecting }
    /// A whole message (a broadcast) may be sent now: open, and not between
    /// the fragments of a message of our own (§5.4).
    @inlinable public var canSendWholeMessage: Bool { currentState == .open && !sendingFragmented }
    /// True while a fragmented message of the peer's has begun and not ended.
    @inlinable public var isReceivingFragmentedMessage: Bool { parser.isInsideMessage }

    // MARK: Receiving

    /// What to do with the bytes received so far. Call it until it returns
    /// `.needMoreData`. Views point into `ring` (or an extension's output) and
    /// are valid until the next call.
    @inlinable @inline(__always)
    public mutating func receive(_ ring: inout ByteRing, now: UInt64) -> ReceiveAction {
        while true {
            if decodingActive {
                if let action = nextDecoded(now: now) { return action }
                continue
            }
            switch parser.next(&ring) {
            case .needMoreData:
                return .needMoreData
            case .data(let chunk, let type, let isFinal):
                if parser.messageRSV != 0 {
                    if let action = startDecoding(chunk, type: type, isFinal: isFinal, now: now) { return action }
                    continue
                }
                return .message(chunk, type: type, isFinal: isFinal)
            case .ping(let payload):
                // §5.5.2: answer with the same payload; once our close is out,
                // nothing may follow it (§5.5.1), so a late ping goes unanswered.
                if currentState == .open { return .sendPong(payload) }
            case .pong(let payload):
                // An unsolicited pong (§5.5.3) answers nothing: it measures nothing.
                let measured = pingSentAt != WebSocketStateMachine.none
                if measured {
                    measuredRoundTrip = now &- pingSentAt
                    pingSentAt = WebSocketStateMachine.none
                }
                return .pong(payload, measured: measured)
            case .close(let code, let reason):
                return peerClosed(code: code, reason: reason, now: now)
            case .failure(let code):
                return fail(code, now: now)
            }
        }
    }

    @usableFromInline
    mutating func peerClosed(code: CloseCode, reason: UnsafeRawBufferPointer, now: UInt64) -> ReceiveAction {
        // §5.5.1: reply with a close frame unless ours is out already; the reply
        // carries the peer's code and reason, as the article's echo does.
        let reply = currentState == .open
        enterClosed(now: now)
        return .closed(code, reason: reason, sendClose: reply)
    }

    /// Fails the connection (§7.1.7): the one path for every failure, the
    /// peer's (a broken rule) or ours (keep-alive timeout, an extension's error).
    /// A close frame with `code` goes out if we may still send one.
    public mutating func fail(_ code: CloseCode, now: UInt64) -> ReceiveAction {
        let send = currentState == .open
        enterClosed(now: now)
        return .closed(code, reason: UnsafeRawBufferPointer(start: nil, count: 0), sendClose: send)
    }

    /// The TCP connection ended (EOF, an error, or our own abort). Returns
    /// the code to tell the application when frames were under way (1006,
    /// §7.1.5), or nil when there is nothing to tell: frames never began, or
    /// their end was told already.
    public mutating func connectionLost(now: UInt64) -> CloseCode? {
        let report = readsFrames
        if currentState != .closed { enterClosed(now: now) }
        return report ? .abnormalClosure : nil
    }

    /// The runtime stops exchanging frames without a closing handshake (after
    /// an HTTP answer, frames never began): only the close timeout applies from
    /// here, for the wait for the peer's FIN. Nothing is reported; already
    /// closed, nothing changes (the close timeout keeps its start).
    public mutating func closeWithoutFrames(now: UInt64) {
        if currentState != .closed { enterClosed(now: now) }
    }

    @usableFromInline
    mutating func enterClosed(now: UInt64) {
        currentState = .closed
        closeStartedAt = now
        decodingActive = false
        dropExtensionState()
    }

    // MARK: Sending

    /// The opcode for the next frame of a data message, or nil when data may
    /// not be sent (the close handshake has begun). Successive calls with
    /// `isFinal` false make one fragmented message (§5.4): the first frame has
    /// `type`'s opcode, the rest are continuations.
    @inlinable @inline(__always)
    public mutating func dataFrame(type: MessageType, isFinal: Bool) -> Opcode? {
        if currentState != .open { return nil }
        let opcode: Opcode = sendingFragmented ? .continuation : type.opcode
        sendingFragmented = !isFinal
        return opcode
    }

    /// Whether a ping (or an unsolicited pong) may be sent now.
    @inlinable public var canSendControl: Bool { currentState == .open }

    /// The application sends a ping (§5.5.2). True when it may go (the
    /// connection is open). Its pong sets `roundTripTime` as a keep-alive
    /// ping's does; while one ping is unanswered the first one's time counts,
    /// so a later pong is never measured against a later ping it may not
    /// answer.
    public mutating func pingSent(now: UInt64) -> Bool {
        guard canSendControl else { return false }
        if pingSentAt == WebSocketStateMachine.none { pingSentAt = now }
        lastWrite = now
        return true
    }

    /// The application starts the closing handshake (§7.1.2): a close frame
    /// goes now, and the peer's close, or the close timeout, ends it. Once
    /// it began, or before frames (connecting) or after them, nothing goes.
    public mutating func startClosing(now: UInt64) -> CloseRequestAction {
        guard currentState == .open else { return .none }
        currentState = .closeSent
        closeStartedAt = now
        return .sendCloseFrame
    }
}

/// What the runtime does when the application asks to close.
public enum CloseRequestAction: Sendable, Equatable {
    /// Write a close frame now and wait for the peer's, up to the close timeout.
    case sendCloseFrame
    /// Nothing: the closing handshake began already, or frames never began
    /// or are over.
    case none
}

/// What the runtime does next with what it received.
public enum ReceiveAction {
    /// Everything received has been handled; read again.
    case needMoreData
    /// Deliver a piece of a message to the application (`isFinal`: its last).
    case message(UnsafeRawBufferPointer, type: MessageType, isFinal: Bool)
    /// Write a pong with this payload (the answer to a ping).
    case sendPong(UnsafeRawBufferPointer)
    /// Tell the application a pong arrived; `measured` when it answered a
    /// ping of ours, whose round-trip time `roundTripTime` now holds.
    case pong(UnsafeRawBufferPointer, measured: Bool)
    /// Frames are over. Write a close frame with `code` and `reason` first if
    /// `sendClose`; tell the application `code` and `reason` (the peer's, or
    /// the code the connection failed with); then end the TCP connection.
    case closed(CloseCode, reason: UnsafeRawBufferPointer, sendClose: Bool)
}
