import WebSocketCore
import WebSocketRuntime

/// What one broadcast did, counted over the connections it was offered to.
public struct BroadcastResult: Equatable, Sendable {
    /// Written, or queued within `maxBackpressure`.
    public var sent = 0
    /// Queued past `maxBackpressure` (the handler hears `didDrain` once they
    /// drain). The message will still go out.
    public var backpressure = 0
    /// Not sent: the connection was not open, was in the middle of sending a
    /// fragmented message (RFC 6455 §5.4 forbids another message's frames in
    /// between), or its queue was past the hard cap.
    public var dropped = 0

    /// Counts to start from (all zero by default).
    public init(sent: Int = 0, backpressure: Int = 0, dropped: Int = 0) {
        self.sent = sent
        self.backpressure = backpressure
        self.dropped = dropped
    }

    mutating func count(_ status: SendStatus) {
        switch status {
        case .sent: sent += 1
        case .backpressure: backpressure += 1
        case .dropped: dropped += 1
        }
    }
}

extension WebSocketServer {
    /// Sends one message to every open WebSocket connection, framing it once.
    ///
    /// Server frames are not masked, so every peer gets the same bytes: the
    /// header is written once and each connection gets it and `payload` by
    /// reference in one `writev`. The payload is copied only for a peer whose
    /// kernel buffer is full, into that peer's queue, under the same limits as
    /// `send`. One call is one system call per peer: gather small messages
    /// into one before broadcasting them at a high rate.
    ///
    /// In a group of several loops the message reaches every loop's
    /// connections: it is framed once into a reference-counted buffer that
    /// each other loop writes by reference on its next turn, in the order its
    /// broadcasts were made. The result counts this loop's connections.
    ///
    /// Loop thread only (a handler, or `loop.execute`); from other threads,
    /// `WebSocketServerGroup.broadcast`. `payload` need only live for the call.
    ///
    /// With compression on, the message is also compressed once per loop, for
    /// every peer that negotiated permessage-deflate without this end's
    /// context (the default) and the full window; a peer that negotiated
    /// nothing gets it uncompressed, and one with a context or window of its
    /// own has it compressed for it alone, as `send` would.
    @discardableResult
    public func broadcast(_ payload: UnsafeRawBufferPointer, type: MessageType) -> BroadcastResult {
        broadcastEverywhere(payload, type: type).here
    }

    /// `broadcast`, with how many loops took the message (this one included).
    func broadcastEverywhere(_ payload: UnsafeRawBufferPointer, type: MessageType) -> (here: BroadcastResult, loops: Int) {
        if let group, group.loopCount > 1 {
            let message = SharedMessage(payload, type: type)
            let loops = group.forward(message, except: loopIndex)
            return (broadcastHere(message.payload, type: type, header: message.header), loops)
        }
        let here = FrameWriter.withHeader(opcode: type.opcode, fin: true, payloadLength: payload.count) { header in
            broadcastHere(payload, type: type, header: header)
        }
        return (here, 1)
    }

    /// The window a broadcast compresses once for: the server's default, which
    /// every peer that did not ask for a smaller one has.
    static var fullWindow: UInt8 { 15 }

    /// This loop's part of a broadcast, with the plain frame header made.
    func broadcastHere(_ payload: UnsafeRawBufferPointer, type: MessageType,
                       header: UnsafeRawBufferPointer) -> BroadcastResult {
        deliver(payload, type: type, header: header, skipsFullQueues: false) { body in forEachOpenConnection(body) }
    }

    /// One message to the connections `targets` visits, framed once: the
    /// plain frame by reference for peers without compression, compressed
    /// once for every peer that shares the server's window and no context,
    /// and coded alone for a peer with a context of its own (as `send`).
    /// `skipsFullQueues`: a peer whose queue is already at `maxBackpressure`
    /// gets nothing (a publication is dropped for it, counted, rather than
    /// queued where it would hold memory for a peer that does not read).
    func deliver(_ payload: UnsafeRawBufferPointer, type: MessageType, header: UnsafeRawBufferPointer,
                 skipsFullQueues: Bool,
                 to targets: ((WebSocketConnection<Handler>) -> Void) -> Void) -> BroadcastResult {
        var result = BroadcastResult()
        var compressedPeers = 0
        if endpoint.deflate != nil {
            targets { if $0.sharedCompressionWindow == Self.fullWindow { compressedPeers += 1 } }
        }
        let limit = options.maxBackpressure
        let compressed = compressedPeers > 0 ? endpoint.deflate?.compressOnce(payload, windowBits: Int(Self.fullWindow)) : nil
        // A publication made in a callback is staged once for the turn and
        // each subscriber references it (one writev per subscriber per turn);
        // a broadcast, or one made elsewhere, is written at once.
        let context = endpoint.context
        let stages = skipsFullQueues && context.isInCallback
        var plainFrame: StagedFrame?
        var compressedFrame: StagedFrame?
        // RSV1 marks the message compressed (RFC 7692 §6).
        FrameWriter.withHeader(opcode: type.opcode, fin: true, rsv: 0x4, payloadLength: compressed?.count ?? 0) { zHeader in
            if stages {
                plainFrame = context.stageFrame(header: header, payload: payload)
                if let compressed { compressedFrame = context.stageFrame(header: zHeader, payload: compressed) }
            }
            targets { connection in
                if skipsFullQueues && connection.bufferedAmount >= limit {
                    result.dropped += 1
                } else if let compressed, connection.sharedCompressionWindow == Self.fullWindow {
                    if let compressedFrame {
                        result.count(connection.sendStagedPublication(compressedFrame, bytes: payload.count, queueLimit: .max))
                    } else {
                        result.count(connection.sendPrepared(header: zHeader, payload: compressed, bytes: payload.count))
                    }
                } else if connection.usesCompression {
                    result.count(connection.sendWholeMessage(payload, type: type))
                } else if let plainFrame {
                    result.count(connection.sendStagedPublication(plainFrame, bytes: payload.count, queueLimit: .max))
                } else {
                    result.count(connection.sendPrepared(header: header, payload: payload))
                }
            }
        }
        return result
    }

    /// Sends one message to each of `connections` (a room, a topic's
    /// subscribers), framing it once; see `broadcast(_:type:)`.
    @discardableResult
    public func broadcast<Connections: Sequence>(_ payload: UnsafeRawBufferPointer, type: MessageType,
                                                 to connections: Connections) -> BroadcastResult
    where Connections.Element == WebSocketConnection<Handler> {
        var result = BroadcastResult()
        FrameWriter.withHeader(opcode: type.opcode, fin: true, payloadLength: payload.count) { header in
            for connection in connections { result.count(connection.sendPrepared(header: header, payload: payload)) }
        }
        return result
    }

    /// `broadcast(_:type:)` for a text message.
    @discardableResult
    public func broadcast(text: String) -> BroadcastResult {
        var text = text
        return text.withUTF8 { broadcast(UnsafeRawBufferPointer($0), type: .text) }
    }
}
