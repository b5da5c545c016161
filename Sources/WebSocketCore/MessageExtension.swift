/// The seam for per-message extensions (RFC 6455 §9; RFC 7692's
/// permessage-deflate is the one this is shaped for).
///
/// An extension marks the first frame of each message it transformed with its
/// RSV bits. Received messages so marked are handed to `decode` as wire bytes
/// and pulled back out decoded with `nextDecoded`, in steps the extension
/// bounds; the state machine validates UTF-8 and counts `maxMessageSize` on
/// the decoded bytes, step by step, so a small message that decodes to a huge
/// one fails with 1009 after one step. Sent messages go through `encode` and
/// `nextEncoded` the same way, and the runtime frames what comes out.
///
/// Pull, not push: no closure is created per message, and the caller decides
/// when the next step runs. An instance belongs to one connection (or, for an
/// extension without per-connection state, is shared on one loop) and is used
/// on that loop's thread only.
public protocol MessageExtension: AnyObject {
    /// The RSV bits it sets, as `FrameHeader.rsv` counts them (RSV1 = 0x4).
    var rsvBits: UInt8 { get }

    /// Input of a received message: `input` is valid until `nextDecoded`
    /// returns `.inputUsed` or the message's last `.output`.
    func decode(_ input: UnsafeRawBufferPointer, isFinal: Bool)
    /// The next decoded bytes, valid until the next call.
    func nextDecoded() -> ExtensionStep

    /// Whether a message of `size` bytes (if known; nil while streaming) should
    /// be transformed at all. Small messages are often cheaper sent as they are.
    func shouldEncode(size: Int?) -> Bool
    /// Input of a message to send; same lifetime rule as `decode`.
    func encode(_ input: UnsafeRawBufferPointer, isFinal: Bool)
    /// The next encoded bytes, valid until the next call.
    func nextEncoded() -> ExtensionStep

    /// Drops any half-done message (the connection ended mid-message).
    func reset()
}

/// An extension with no state between messages (permessage-deflate without
/// context takeover in either direction): one instance serves every
/// connection of a loop that negotiated it. An idle connection holds only this
/// shared instance; while one of its messages is being received or sent it
/// borrows a per-message instance from `lender`, and gives it back when both
/// directions are between messages. So such a connection costs no memory of
/// its own between messages. Loop thread only.
public protocol SharedMessageExtension: MessageExtension {
    /// Lends the per-message instances; one per shared extension.
    var lender: ExtensionLender { get }
    /// A new per-message instance (the lender keeps it for reuse).
    func makeInstance() -> any MessageExtension
}

/// The per-message instances of a `SharedMessageExtension`, kept for reuse so
/// that a message borrows one without allocating.
///
/// The shared extension holds its lender. Idle connections hold a marker,
/// which holds the shared extension; so the lender keeps the marker weakly
/// (made again once no connection holds it), and no cycle forms.
public final class ExtensionLender {
    private weak var idleMarker: NegotiatedExtension?
    private var free: [NegotiatedExtension] = []
    private unowned let shared: any SharedMessageExtension

    /// A lender of `shared`'s per-connection state.
    public init(_ shared: any SharedMessageExtension) {
        self.shared = shared
    }

    /// What an idle connection holds: the shared extension, never decoding.
    @usableFromInline var idle: NegotiatedExtension {
        if let marker = idleMarker { return marker }
        let marker = NegotiatedExtension(shared, isIdleMarker: true)
        marker.sharedOwner = shared
        idleMarker = marker
        return marker
    }

    /// An instance for a connection that held `marker`. The instance holds
    /// the marker while lent, so that the marker (and through it the shared
    /// extension and this lender) stays alive, and comes back without being
    /// made again: lending allocates nothing once warm.
    @usableFromInline func lend(replacing marker: NegotiatedExtension) -> NegotiatedExtension {
        let instance = free.popLast() ?? NegotiatedExtension(shared.makeInstance())
        instance.heldMarker = marker
        return instance
    }

    /// Takes an instance back; returns the marker its connection holds again.
    @usableFromInline func giveBack(_ negotiated: NegotiatedExtension) -> NegotiatedExtension {
        let marker = negotiated.heldMarker ?? idle
        negotiated.type = nil
        negotiated.sending = false
        negotiated.heldMarker = nil
        free.append(negotiated)
        return marker
    }

    /// Instances made and waiting to be lent (tests check that they come back).
    public var idleInstances: Int { free.count }
}

/// One step of an extension's output.
public enum ExtensionStep {
    /// Output bytes; `endOfMessage` is true on the last piece of a message whose
    /// final input has been given.
    case output(UnsafeRawBufferPointer, endOfMessage: Bool)
    /// The input given so far is used up and the message is not over: give more.
    case inputUsed
    /// The input is malformed for this extension: fail the connection with this
    /// code (1007 for bad compressed data, say).
    case failure(CloseCode)
}

/// A negotiated extension and where a received, transformed message stands
/// while it decodes. Behind one reference, so a connection without an
/// extension (most of them) pays 8 bytes for it, not the existential and the
/// decoding state.
///
/// For a shared extension this is either the lender's marker (what an idle
/// connection holds) or a lent instance, given back once neither direction
/// is inside a message.
@usableFromInline
final class NegotiatedExtension {
    @usableFromInline let ext: any MessageExtension
    @usableFromInline var size = 0
    /// A marker's shared extension, held (nil for every other instance).
    @usableFromInline var sharedOwner: (any SharedMessageExtension)?
    /// A lent instance's marker, held while lent.
    @usableFromInline var heldMarker: NegotiatedExtension?
    /// The lender's marker: held by idle connections, lends before any use.
    @usableFromInline let isIdleMarker: Bool
    @usableFromInline var utf8 = UTF8Validator()
    /// The type of the received message being decoded (nil: none).
    @usableFromInline var type: MessageType?
    /// A sent message is between its first and last frame.
    @usableFromInline var sending = false
    @usableFromInline init(_ ext: any MessageExtension, isIdleMarker: Bool = false) {
        self.ext = ext
        self.isIdleMarker = isIdleMarker
    }
}

extension WebSocketStateMachine {
    /// A chunk of a message whose first frame carried the extension's bits.
    @usableFromInline @inline(never)
    mutating func startDecoding(_ chunk: UnsafeRawBufferPointer, type: MessageType, isFinal: Bool,
                                now: UInt64) -> ReceiveAction? {
        // The parser admits RSV bits only when an extension set `allowedRSV`.
        guard var negotiated else { return fail(.protocolError, now: now) }
        if negotiated.isIdleMarker, let owner = negotiated.sharedOwner {
            negotiated = owner.lender.lend(replacing: negotiated)
            self.negotiated = negotiated
        }
        if negotiated.type == nil {
            negotiated.type = type
            negotiated.size = 0
            negotiated.utf8.reset()
        }
        negotiated.ext.decode(chunk, isFinal: isFinal)
        decodingActive = true
        return nextDecoded(now: now)
    }

    /// The extension's next step, checked: UTF-8 (§8.1, fail fast) and the
    /// message size on the decoded bytes. Nil: the input is used up, parse on.
    @usableFromInline @inline(never)
    mutating func nextDecoded(now: UInt64) -> ReceiveAction? {
        guard let negotiated, let type = negotiated.type else {
            decodingActive = false
            return nil
        }
        switch negotiated.ext.nextDecoded() {
        case .inputUsed:
            decodingActive = false
            return nil
        case .failure(let code):
            return fail(code, now: now)
        case .output(let bytes, let end):
            negotiated.size += bytes.count
            if UInt64(negotiated.size) > parser.maxMessageSize { return fail(.messageTooBig, now: now) }
            if type == .text {
                if !negotiated.utf8.validate(bytes) || (end && !negotiated.utf8.isComplete) {
                    return fail(.invalidPayloadData, now: now)
                }
            }
            if end {
                decodingActive = false
                negotiated.type = nil
                returnIfIdle()
            }
            return .message(bytes, type: type, isFinal: end)
        }
    }

    /// The extension to encode a message with, for the runtime's send path:
    /// call it for the message's first frame, and `finishedSending` after its
    /// last. A shared extension lends an instance for the message.
    public mutating func beginSending() -> (any MessageExtension)? {
        guard var negotiated else { return nil }
        if negotiated.isIdleMarker, let owner = negotiated.sharedOwner {
            negotiated = owner.lender.lend(replacing: negotiated)
            self.negotiated = negotiated
        }
        negotiated.sending = true
        return negotiated.ext
    }

    /// The extension encoding the message being sent (after `beginSending`).
    public var outboundExtension: (any MessageExtension)? { negotiated?.ext }

    /// The last frame of an encoded message has been sent.
    public mutating func finishedSending() {
        negotiated?.sending = false
        returnIfIdle()
    }

    /// A lent instance goes back once neither direction is inside a message.
    @usableFromInline
    mutating func returnIfIdle() {
        guard let negotiated, let owner = negotiated.heldMarker?.sharedOwner,
              negotiated.type == nil, !negotiated.sending else { return }
        self.negotiated = owner.lender.giveBack(negotiated)
    }

    /// The connection is over: a lent instance, reset, goes back.
    @usableFromInline
    mutating func dropExtensionState() {
        guard let negotiated, !negotiated.isIdleMarker else { return }
        negotiated.ext.reset()
        negotiated.type = nil
        negotiated.sending = false
        returnIfIdle()
    }
}
