/// What the parser found next in the receive ring.
///
/// Every buffer view points into the ring and is valid only until the next call
/// to `FrameParser.next(_:)`: copy what must outlive it.
public enum FrameEvent {
    /// Not enough bytes for anything more; read again.
    case needMoreData
    /// A piece of a text or binary message. A message may arrive as many chunks
    /// (one per frame, and more when a frame spans reads or the ring's wrap point);
    /// `isFinal` marks its last one, as ASP.NET's `EndOfMessage` does. Text chunks
    /// have been UTF-8 validated so far, but a chunk may end inside a code point.
    case data(UnsafeRawBufferPointer, type: MessageType, isFinal: Bool)
    case ping(UnsafeRawBufferPointer)
    case pong(UnsafeRawBufferPointer)
    /// The peer's close frame, validated. `code` is 1005 when the frame had no
    /// payload (RFC 6455 §7.1.5). No event follows a close.
    case close(code: CloseCode, reason: UnsafeRawBufferPointer)
    /// The peer broke a rule: fail the connection with this code (§7.1.7). No
    /// event follows a failure.
    case failure(CloseCode)
}

/// The receiving half of RFC 6455 framing, sans I/O: it reads frames from a
/// `ByteRing`, unmasks payloads in place and reports them as `FrameEvent`s.
///
/// It is a pull parser: the caller asks for the next event until it gets
/// `.needMoreData`. The bytes an event points at are consumed on the following
/// call, so the views stay valid while the caller handles the event, and nothing
/// is copied or allocated per frame.
public struct FrameParser {
    // Fields in order of size: a struct is laid out as declared, and this one
    // lives in every connection (84 bytes in declaration order by meaning, 56 so).

    /// A message whose fragments add up to more fails with 1009 (§7.4.1), checked
    /// on each frame header, before the payload arrives.
    public var maxMessageSize: UInt64
    /// Bytes handed out by the previous event, consumed on the next call.
    @usableFromInline var pendingConsume = 0
    /// Payload bytes of the current frame still to come.
    @usableFromInline var remaining: UInt64 = 0
    @usableFromInline var maskPhase = 0
    @usableFromInline var messageSize: UInt64 = 0
    @usableFromInline var maskKey: UInt32 = 0
    /// The end that receives the frames (a server expects them masked).
    public let role: Role
    /// RSV bits that a negotiated extension defines (none: 0). Set once, when
    /// the handshake has negotiated the extension.
    public var allowedRSV: UInt8 = 0
    /// The RSV bits of the current (or last) message's first frame. Nonzero
    /// means an extension transformed the message: its chunks are the wire
    /// bytes, not yet UTF-8 validated, for the extension to decode (the
    /// validator then runs on the decoded bytes).
    @usableFromInline var messageRSVBits: UInt8 = 0
    /// Inside a data frame's payload.
    @usableFromInline var inPayload = false
    @usableFromInline var frameFin = false
    @usableFromInline var frameMasked = false
    /// The open message's type, nil between messages.
    @usableFromInline var messageType: MessageType?
    /// Set after a close or a failure: the parser reports nothing more.
    @usableFromInline var terminated = false
    @usableFromInline var utf8 = UTF8Validator()
    #if DEBUG
    /// Messages the one-pass path (`wholeShortMessage`) delivered: debug
    /// builds count them, so tests can tell which path a frame took.
    public var onePassMessages = 0
    #endif

    /// The RSV bits of the open message's first frame (RSV1: compressed, RFC 7692).
    @inlinable public var messageRSV: UInt8 { messageRSVBits }
    /// A close or a failure was reported: the parser reports nothing more.
    @inlinable public var isTerminated: Bool { terminated }

    /// A parser for frames sent to `role`, failing messages over `maxMessageSize` with 1009.
    public init(role: Role, maxMessageSize: UInt64 = .max) {
        self.role = role
        self.maxMessageSize = maxMessageSize
    }

    /// True while a fragmented message has started and not ended.
    @inlinable public var isInsideMessage: Bool { messageType != nil }

    /// The next event from the ring's bytes: a payload piece, a control frame, a failure, or the
    /// need for more bytes.
    @inlinable @inline(__always)
    public mutating func next(_ ring: inout ByteRing) -> FrameEvent {
        if pendingConsume != 0 {
            ring.consume(pendingConsume)
            pendingConsume = 0
        }
        if terminated { return .needMoreData }
        if inPayload { return nextPayloadChunk(&ring) }
        // Inline, in the caller's loop: the common frame costs no call.
        if let event = wholeShortMessage(ring) { return event }
        return nextHeader(&ring)
    }

    @inlinable
    mutating func nextHeader(_ ring: inout ByteRing) -> FrameEvent {
        if ring.count < 2 { return .needMoreData }
        let headerLength = FrameHeader.length(firstTwoBytes: ring.byte(at: 0), ring.byte(at: 1))
        if ring.count < headerLength { return .needMoreData }
        let header = FrameHeader.decode(ring.contiguousBytes(from: 0, length: headerLength))
        if let code = FrameRules.violation(of: header, role: role, allowedRSV: allowedRSV,
                                           messageInProgress: messageType != nil) {
            return fail(code)
        }
        // The rules admitted only the six defined opcodes.
        if header.opcode.isControl {
            return controlFrame(header, &ring)
        }
        if header.opcode != .continuation {
            messageType = header.opcode == .text ? .text : .binary
            messageRSVBits = header.rsv
            messageSize = 0
            utf8.reset()
        }
        // Checked against the whole message before any payload is read (§10.4).
        if header.payloadLength > maxMessageSize &- messageSize { return fail(.messageTooBig) }
        messageSize &+= header.payloadLength
        ring.consume(headerLength)
        remaining = header.payloadLength
        frameFin = header.fin
        frameMasked = header.masked
        maskKey = header.maskKey
        maskPhase = 0
        if remaining == 0 {
            // An empty frame still carries the end-of-message flag (and an empty
            // fragment is echoed as one).
            return deliver(UnsafeMutableRawPointer(ring.storage), count: 0, isFinal: frameFin)
        }
        inPayload = true
        return nextPayloadChunk(&ring)
    }

    /// The common frame, handled in one pass: a whole message in one frame
    /// (FIN, text or binary, outside a fragmented message) whose payload is
    /// under 126 bytes and lies in one piece in the ring. Which frames those
    /// are is the only test of its own: whether such a frame is valid is
    /// `FrameRules`, the same rules the general path applies, evaluated on
    /// its first two bytes with no RSV bit allowed (a frame an extension
    /// transformed, or one that breaks a rule, takes the general path, which
    /// decides with the real settings). None of the per-frame state is
    /// written: the next header starts from the same state either way. Any
    /// other frame, or a short one not all here yet, returns nil (callgrind,
    /// a 16-byte message as in chat, tickers and games: about 210
    /// instructions a frame on the general path, 125 here with the unmasking).
    @inlinable @inline(__always)
    mutating func wholeShortMessage(_ ring: ByteRing) -> FrameEvent? {
        let (p, available) = ring.contiguousReadable(from: 0)
        if available < 2 { return nil }
        let b0 = p.load(as: UInt8.self)
        let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
        let length = Int(b1 & 0x7F)
        let masked = b1 & 0x80 != 0
        let headerLength = masked ? 6 : 2
        let header = FrameHeader(fin: b0 & 0x80 != 0, rsv: (b0 >> 4) & 0x7, opcode: Opcode(rawValue: b0),
                                 masked: masked, maskKey: 0, payloadLength: UInt64(length), headerLength: headerLength)
        guard header.fin, header.opcode.beginsMessage, length < 126, available >= headerLength &+ length,
              messageType == nil, UInt64(length) <= maxMessageSize,
              FrameRules.violation(of: header, role: role, allowedRSV: 0, messageInProgress: false) == nil
        else { return nil }
        #if DEBUG
        onePassMessages &+= 1
        #endif
        let payload = p + headerLength
        if masked {
            Masking.apply(key: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self), phase: 0, to: payload, count: length)
        }
        let type: MessageType
        if header.opcode == .text {
            // §8.1: the whole message is here, so it is valid or not now.
            utf8.reset()
            if !utf8.validate(payload, count: length) || !utf8.isComplete { return fail(.invalidPayloadData) }
            type = .text
        } else {
            type = .binary
        }
        messageRSVBits = 0
        pendingConsume = headerLength &+ length
        return .data(UnsafeRawBufferPointer(start: payload, count: length), type: type, isFinal: true)
    }

    // Forced inline, with `deliver`: one call per frame instead of three
    // (measured with callgrind: the calls cost as much as the work).
    @inlinable @inline(__always)
    mutating func nextPayloadChunk(_ ring: inout ByteRing) -> FrameEvent {
        let (pointer, available) = ring.contiguousReadable(from: 0)
        if available == 0 { return .needMoreData }
        let n = UInt64(available) < remaining ? available : Int(truncatingIfNeeded: remaining)
        if frameMasked {
            maskPhase = Masking.apply(key: maskKey, phase: maskPhase, to: pointer, count: n)
        }
        remaining &-= UInt64(n)
        if remaining == 0 { inPayload = false }
        pendingConsume = n
        return deliver(pointer, count: n, isFinal: remaining == 0 && frameFin)
    }

    @inlinable @inline(__always)
    mutating func deliver(_ pointer: UnsafeMutableRawPointer, count: Int, isFinal: Bool) -> FrameEvent {
        let type = messageType!
        if type == .text && messageRSVBits == 0 {
            // §8.1: fail as soon as the text can no longer be valid UTF-8. A
            // transformed message is validated after decoding, by its decoder's caller.
            if !utf8.validate(pointer, count: count) || (isFinal && !utf8.isComplete) {
                return fail(.invalidPayloadData)
            }
        }
        if isFinal { messageType = nil }
        return .data(UnsafeRawBufferPointer(start: pointer, count: count), type: type, isFinal: isFinal)
    }

    @inlinable
    mutating func controlFrame(_ header: FrameHeader, _ ring: inout ByteRing) -> FrameEvent {
        // Control payloads are at most 125 bytes (checked by the rules), so the
        // whole frame is awaited and handed out in one piece.
        let length = Int(header.payloadLength)
        let total = header.headerLength &+ length
        if ring.count < total { return .needMoreData }
        let frame = ring.contiguousBytes(from: 0, length: total)
        let payload = frame + header.headerLength
        if header.masked {
            Masking.apply(key: header.maskKey, phase: 0, to: payload, count: length)
        }
        pendingConsume = total
        let view = UnsafeRawBufferPointer(start: payload, count: length)
        switch header.opcode {
        case .ping: return .ping(view)
        case .pong: return .pong(view)
        default: return closeFrame(view)
        }
    }

    @inlinable
    mutating func closeFrame(_ payload: UnsafeRawBufferPointer) -> FrameEvent {
        switch ClosePayload.parse(payload) {
        case .success(let (code, reason)):
            terminated = true
            return .close(code: code, reason: reason)
        case .failure(let error):
            return fail(error.code)
        }
    }

    @inlinable
    mutating func fail(_ code: CloseCode) -> FrameEvent {
        terminated = true
        inPayload = false
        return .failure(code)
    }
}
