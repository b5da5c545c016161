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
@usableFromInline
final class NegotiatedExtension {
    @usableFromInline let ext: any MessageExtension
    @usableFromInline var type: MessageType?
    @usableFromInline var size = 0
    @usableFromInline let maxMessageSize: Int
    @usableFromInline var utf8 = UTF8Validator()
    @usableFromInline init(_ ext: any MessageExtension, maxMessageSize: Int) {
        self.ext = ext
        self.maxMessageSize = maxMessageSize
    }
}

extension WebSocketStateMachine {
    /// A chunk of a message whose first frame carried the extension's bits.
    @usableFromInline @inline(never)
    mutating func startDecoding(_ chunk: UnsafeRawBufferPointer, type: MessageType, isFinal: Bool,
                                now: UInt64) -> ReceiveAction? {
        // The parser admits RSV bits only when an extension set `allowedRSV`.
        guard let negotiated else { return fail(.protocolError, now: now) }
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
            if negotiated.size > negotiated.maxMessageSize { return fail(.messageTooBig, now: now) }
            if type == .text {
                if !negotiated.utf8.validate(bytes) || (end && !negotiated.utf8.isComplete) {
                    return fail(.invalidPayloadData, now: now)
                }
            }
            if end {
                decodingActive = false
                negotiated.type = nil
            }
            return .message(bytes, type: type, isFinal: end)
        }
    }

    /// The negotiated extension, for the runtime's send path.
    @inlinable public var outboundExtension: (any MessageExtension)? { negotiated?.ext }
}
