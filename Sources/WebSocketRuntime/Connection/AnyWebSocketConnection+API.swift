import UVKit
import WebSocketCore

/// What an application can do with a connection: send, ping, close, pause,
/// and read its state. Every call checks that it runs on the connection's
/// loop thread; after `didClose` sends only report `.dropped`.
extension AnyWebSocketConnection {
    /// True while messages can be sent: the handshake is done and no close has begun.
    public final var isOpen: Bool { machine.isOpen }

    /// Still reading the HTTP head: no WebSocket yet.
    package var isInHTTPPhase: Bool { machine.isConnecting && !isClosing }

    /// Bytes queued in user space, not yet taken by the kernel.
    public final var bufferedAmount: Int { queuedCount }

    /// Whether a per-message extension (permessage-deflate) was negotiated.
    public final var usesCompression: Bool { machine.usesExtension }

    /// The round-trip time measured by the last keep-alive ping, in milliseconds.
    public final var roundTripTime: UInt64? { machine.roundTripTime }

    /// Sends a message, or one fragment of it. Successive calls with `isFinal`
    /// false send one fragmented message (the first frame has `type`'s opcode,
    /// the rest are continuations), which is how an echo returns a message chunk
    /// by chunk. `payload` is copied or written before this returns.
    // Inlined into the handler, with the common short reply (`sendFrame`):
    // a call and a second frame of saved registers cost about 30
    // instructions per message, a tenth of the echo's user time.
    /// Sends a message, or one frame of it with `isFinal: false` (the next sends continue it);
    /// `.backpressure` when the queue is past `maxBackpressure`, `.dropped` when the connection is
    /// not open.
    @discardableResult @inline(__always)
    public final func send(_ payload: UnsafeRawBufferPointer, type: MessageType, isFinal: Bool = true) -> SendStatus {
        // The thread is checked where the frame is written: the cork's
        // fast path takes only the thread whose read callback holds the
        // cork, and every other path checks it in full (`sendAnyFrame`).
        guard let opcode = machine.dataFrame(type: type, isFinal: isFinal) else { return .dropped }
        let status = machine.usesExtension
            ? sendThroughExtension(payload, opcode: opcode, isFinal: isFinal)
            : sendFrame(opcode, fin: isFinal, payload: payload)
        countSent(status, bytes: payload.count, isFinal: isFinal)
        return status
    }

    /// The same, with a say on compression: `compress: false` sends this
    /// message uncompressed even when permessage-deflate was negotiated (data
    /// that is already compressed, or a secret that must not share a
    /// compression context with text an attacker controls). Applies to a
    /// whole message: its first fragment decides.
    @discardableResult
    public final func send(_ payload: UnsafeRawBufferPointer, type: MessageType, isFinal: Bool = true, compress: Bool) -> SendStatus {
        if compress || !machine.usesExtension { return send(payload, type: type, isFinal: isFinal) }
        checkThread("WebSocketConnection.send")
        guard let opcode = machine.dataFrame(type: type, isFinal: isFinal) else { return .dropped }
        let status = sendThroughExtension(payload, opcode: opcode, isFinal: isFinal, mayEncode: false)
        countSent(status, bytes: payload.count, isFinal: isFinal)
        return status
    }

    /// The counters of every data send: the application's payload bytes (before
    /// an extension's encoding), and a message with its final piece.
    @inline(__always)
    func countSent(_ status: SendStatus, bytes: Int, isFinal: Bool) {
        if status == .dropped { return countDropped() }
        endpointRef._withUnsafeGuaranteedRef { endpoint in
            endpointCore.metrics.bytesSent &+= bytes
            if isFinal { endpointCore.metrics.messagesSent &+= 1 }
        }
    }

    @inline(never)
    func countDropped() {
        endpointCore.metrics.messagesDropped &+= 1
    }

    /// `send(_:type:isFinal:)` for a whole text message.
    @discardableResult
    public final func send(text: String) -> SendStatus {
        var text = text
        return text.withUTF8 { send(UnsafeRawBufferPointer($0), type: .text) }
    }

    /// `send(_:type:isFinal:)` for a whole binary message.
    @discardableResult
    public final func send(binary: [UInt8]) -> SendStatus {
        binary.withUnsafeBytes { send($0, type: .binary) }
    }

    /// Sends a ping (at most 125 bytes of payload, §5.5). Its pong updates
    /// `roundTripTime`, as the keep-alive pings' do.
    @discardableResult
    public final func ping(_ payload: [UInt8] = []) -> SendStatus {
        checkThread("WebSocketConnection.ping")
        guard payload.count <= 125, machine.pingSent(now: context.loop.now) else { return .dropped }
        return payload.withUnsafeBytes { sendFrame(.ping, fin: true, payload: $0) }
    }

    /// Starts the closing handshake (§7.1.2): sends a close frame and waits for
    /// the peer's, up to the close timeout. `didClose` follows.
    ///
    /// `code` must be one a close frame may carry (RFC 6455 §7.4: 1000–1003,
    /// 1007–1014, 3000–4999). Any other (1005, 1006 and 1015 are local-only
    /// markers; codes under 1000, 1004, 1016–2999 and from 5000 on are
    /// reserved or undefined) is sent as 1011, with `reason`, and logged at
    /// warning level: the peer would otherwise fail the connection with 1002.
    public final func close(code: CloseCode = .normalClosure, reason: String = "") {
        checkThread("WebSocketConnection.close")
        guard machine.startClosing(now: context.loop.now) == .sendCloseFrame else { return }
        // The peer's close frame must be read, whatever the application held.
        if readingHeld { resumeReadingForClose() }
        let code = sendableCloseCode(code)
        var reason = reason
        reason.withUTF8 { sendCloseFrame(code: code, reason: UnsafeRawBufferPointer($0)) }
        scheduleDeadline()
    }

    /// Stops reading from the peer until `resumeReading()`: flow control for
    /// a handler whose consumer falls behind (the async face's bounded
    /// buffer uses it). Messages already read, up to one receive buffer, are
    /// still delivered; then the kernel's buffer fills and TCP stops the
    /// peer. While reading is paused, keep-alive neither pings nor times the
    /// peer out: a pong could not be read, and the stall is this end's.
    /// Starting a close resumes reading, so the peer's close frame is seen.
    /// A paused connection keeps its loop running (`run()` does not return
    /// while it is open), so pause only what will be resumed or closed: a
    /// peer that leaves meanwhile is seen only once reading resumes.
    public final func pauseReading() {
        checkThread("WebSocketConnection.pauseReading")
        guard machine.readsFrames else { return }
        holdReading()
    }

    /// Reading resumes after `pauseReading()` (unless the queue to the peer
    /// still holds it paused for backpressure: its drain resumes it then).
    public final func resumeReading() {
        checkThread("WebSocketConnection.resumeReading")
        guard machine.readsFrames else { return }
        releaseReading()
        // The keep-alive clock restarts from now: nothing was read meanwhile.
        machine.lastRead = max(machine.lastRead, context.loop.now)
    }

    /// Whether the application paused reading (`pauseReading()`).
    public final var isReadingPaused: Bool { readingHeld }

    /// The loop this connection lives on (its thread is the only one that
    /// may call it).
    package var eventLoop: EventLoop { context.loop }

    /// True if bytes are queued for the peer; `didDrain` then follows once
    /// the kernel has taken them all (while the connection is open).
    package final func notifyWhenDrained() -> Bool {
        checkThread("WebSocketConnection.notifyWhenDrained")
        return notifyWhenQueueDrains()
    }

    /// Sends made in `body` leave in one write when it returns (the loop's
    /// cork), without stopping reads past the limit (`LoopContext.corkBatch`).
    package final func sendBatch(_ body: () -> Void) {
        context.corkBatch(body)
    }

    /// Drops the connection at once, without a closing handshake (the handler
    /// hears 1006).
    ///
    /// Inside a handler callback, `didClose` does not run within this call: it
    /// follows from the socket's close callback, later in the same loop turn.
    public final func abort() {
        checkThread("WebSocketConnection.abort")
        loseFromCall()
    }

    /// Traps, naming the rule, on a thread that does not run the loop.
    @inline(__always)
    func checkThread(_ call: StaticString) {
        contextRef._withUnsafeGuaranteedRef { $0.loop.checkThread(call) }
    }

    /// A code this end may put in a close frame: `code`, or 1011 for one
    /// §7.4 keeps off the wire (logged, since it is the caller's mistake).
    func sendableCloseCode(_ code: CloseCode) -> CloseCode {
        if code.isValidOnWire { return code }
        endpointCore.logger.warning("close code \(code.rawValue) may not be sent (RFC 6455 §7.4); sending 1011")
        return .internalError
    }

    /// For handlers that want whole messages: feed it every chunk from
    /// `didReceive`; it returns the message with its final chunk, else nil. A
    /// message that arrived in one chunk comes back as it is (no copy); one that
    /// spanned frames or reads is joined in a buffer of this connection's. The
    /// view is valid until the next call, and never larger than
    /// `maxMessageSize` (the protocol fails bigger messages with 1009 first).
    public final func wholeMessage(_ chunk: UnsafeRawBufferPointer, isFinal: Bool) -> UnsafeRawBufferPointer? {
        checkThread("WebSocketConnection.wholeMessage")
        return assembler.append(chunk, isFinal: isFinal)
    }

    /// One peer's part of a broadcast: a frame built once for every peer. Not
    /// to a connection in the middle of sending a fragmented message (§5.4).
    /// `bytes`: what the application sent (a compressed payload is smaller).
    package final func sendPrepared(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                              bytes: Int? = nil) -> SendStatus {
        checkThread("WebSocketServer.broadcast")
        guard machine.canSendWholeMessage else { return .dropped }
        let status = sendFramed(header: header, payload: payload)
        countSent(status, bytes: bytes ?? payload.count, isFinal: true)
        return status
    }

    /// A subscriber's copy of a publication staged this turn, with the
    /// publication's rules: dropped when the connection is not open, is in
    /// the middle of a fragmented message of its own (§5.4), or already has
    /// `queueLimit` bytes queued (a peer that does not read must not stall
    /// the others or hold more; `.max` when the caller checked already).
    /// The publisher checked the thread.
    package final func sendStagedPublication(_ frame: StagedFrame, bytes: Int, queueLimit: Int) -> SendStatus {
        let status = stagePublication(frame, queueLimit: queueLimit)
        countSent(status, bytes: bytes, isFinal: true)
        return status
    }

    /// The same without the counters, which a caller that stages for many
    /// connections of one endpoint adds once (`Topics`' fan-out loop).
    @inline(__always)
    package final func stagePublication(_ frame: StagedFrame, queueLimit: Int) -> SendStatus {
        guard machine.canSendWholeMessage else { return .dropped }
        return sendStaged(frame, queueLimit: queueLimit)
    }

    /// One peer's part of a broadcast that is coded for it alone (its own
    /// compression context): a whole message, never inside one of its own
    /// fragmented messages (§5.4).
    package final func sendWholeMessage(_ payload: UnsafeRawBufferPointer, type: MessageType) -> SendStatus {
        guard machine.canSendWholeMessage else { return .dropped }
        return send(payload, type: type)
    }

    // MARK: Extension seam, send side

    /// A negotiated extension encodes the message (or leaves it as it is, for
    /// small ones); the frames carry its RSV bits on the first frame only.
    @inline(never)
    func sendThroughExtension(_ payload: UnsafeRawBufferPointer, opcode: Opcode, isFinal: Bool,
                              mayEncode: Bool = true) -> SendStatus {
        if opcode != .continuation {
            guard let ext = machine.outboundExtension else { return .dropped }
            encodingMessage = mayEncode && ext.shouldEncode(size: isFinal ? payload.count : nil)
            encodingFirstOpcode = opcode
            // A shared extension lends the instance that encodes this message.
            if encodingMessage { _ = machine.beginSending() }
        }
        guard encodingMessage else { return sendFrame(opcode, fin: isFinal, payload: payload) }
        guard let ext = machine.outboundExtension else { return .dropped }
        ext.encode(payload, isFinal: isFinal)
        var status = SendStatus.sent
        loop: while true {
            switch ext.nextEncoded() {
            case .inputUsed:
                break loop
            case .failure(let code):
                // A resource failure (zlib could not allocate): this
                // connection ends, reported after the current callback.
                logEvent("message extension failed", ["code": "\(code.rawValue)"])
                loseFromCall()
                return .dropped
            case .output(let bytes, let end):
                if bytes.isEmpty && !end { continue }
                // The extension's bits mark the message's first frame only.
                let first = encodingFirstOpcode
                encodingFirstOpcode = nil
                let s = sendFrame(first ?? .continuation, fin: end, rsv: first != nil ? ext.rsvBits : 0,
                                         payload: bytes)
                if s != .sent { status = s }
                if end {
                    machine.finishedSending()
                    break loop
                }
            }
        }
        return status
    }
}
