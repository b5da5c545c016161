import TLSKit
import UVKit
import WebSocketCore

/// Where a connection is in its life. At file scope, not nested in the generic
/// class: a nested enum is generic too, and its `==` is then a call per test
/// in the unspecialized read path.
enum ConnectionPhase {
    /// Reading the HTTP head (the request on a server, the response on a client).
    case http
    /// WebSocket frames flow; the state machine decides.
    case frames
    /// Frames are over: FIN goes out after the queued writes, reads are
    /// discarded until the peer's FIN or the close timeout.
    case draining
    /// The handle is closing.
    case closed
    /// The handle is closing because the connection was lost inside a call
    /// (a send the kernel refused, `abort()`): the handler hears 1006 from
    /// the close callback, never from inside that call, so no callback of
    /// the handler runs inside another.
    case lost
}

/// One WebSocket connection, server-side or client-side: the same type in both
/// roles, and every line past the opening handshake is shared.
///
/// It *has* a stream (the transport, through which every byte passes) and a
/// protocol (`WebSocketStateMachine`, which answers pings, runs the closing
/// handshake and decides keep-alive); it only carries out what they decide.
/// Nothing of the stream's I/O surface is reachable from here: an application
/// sends messages and closes with a code.
///
/// It keeps itself alive from the TCP connect until the stream's close
/// callback, whoever else holds it: a server or client released while its
/// connections close leaves them nothing to reach through a freed owner.
/// All of it runs on the loop thread, and every public call checks that
/// (`EventLoop.checkThread`). Handlers get it in every call and may keep it
/// (strongly) for later sends; after `didClose` it only drops what is sent.
public final class WebSocketConnection<Handler: WebSocketHandler> {
    typealias Phase = ConnectionPhase

    // Fields in order of size: a class is laid out as declared, and there is
    // one of these per connection (docs/benchmarks.md, idle memory).

    /// The stream, held (retained in `init`, released in `deinit`) and lent
    /// on the per-message path without a retain; one field for both.
    let streamRef: Unmanaged<ConnectionStream<Handler>>
    var stream: ConnectionStream<Handler> { streamRef.takeUnretainedValue() }
    /// The endpoint, held: it holds the loop context, which holds the buffers
    /// the stream's last callbacks use. Lent on the per-message path.
    let endpointRef: Unmanaged<Endpoint<Handler>>
    /// The handler, not counted (the endpoint holds it).
    let handlerRef: Unmanaged<Handler>
    /// The loop's context, as the stream holds it (not counted).
    var contextRef: Unmanaged<LoopContext> { streamRef._withUnsafeGuaranteedRef { $0.contextRef } }
    /// The protocol. Before the handshake completes its `lastRead` is when the
    /// TCP connection began (the handshake timeout counts from there).
    @exclusivity(unchecked) var machine: WebSocketStateMachine
    // The byte-sized fields go right after the state machine, in the padding
    // its odd size leaves before the next pointer.
    @exclusivity(unchecked) var phase = Phase.http
    /// The message being sent goes through the extension; until its first
    /// frame is out, the opcode that frame carries.
    var encodingMessage = false
    var encodingFirstOpcode: Opcode?
    /// With permessage-deflate and no context of this end's: the window its
    /// messages are compressed with (0 otherwise), so a broadcast compresses
    /// once for every connection with the same window.
    package internal(set) var sharedCompressionWindow: UInt8 = 0
    /// HTTP keep-alive (a server's plain requests): a response is under way,
    /// so the next request's head waits in `head` until it ends.
    var httpResponding = false
    /// Heads are being dispatched by `headBytesArrived`'s loop, which takes
    /// the next pipelined one itself when a response ends inside it.
    var httpDispatching = false
    /// Responses finished on this connection with it kept open (saturating).
    var httpExchanges: UInt16 = 0
    /// Its index in its server's connection table (-1: none).
    package var tableSlot: Int32 = -1

    /// The HTTP head, read into its own buffer (freed once it is handled).
    var head = HeadBuffer()

    /// What the last read left unparsed (a partial frame header or control
    /// frame), borrowed from the loop's pool until the next read.
    @exclusivity(unchecked) var leftover: RingPool.Ring?
    /// A client connection's handshake: its key and request.
    package var clientHandshake: ClientHandshakeState?
    /// Joins chunks for `wholeMessage`; holds memory only while a message spans reads.
    var assembler = MessageAssembler()
    /// The subprotocol agreed in the handshake.
    public package(set) var subprotocol: String?
    /// The request path (and query) the WebSocket was opened on.
    public package(set) var path: String?
    /// The application's per-connection state, typed by the handler.
    public var data: Handler.ConnectionData?

    /// - Parameters:
    ///   - tls: the TLS context to speak through, if any.
    ///   - serverName: a client's host name for SNI and certificate checks.
    package init(endpoint: Endpoint<Handler>, tls: TLSContext? = nil, serverName: String? = nil) {
        endpointRef = Unmanaged.passRetained(endpoint)
        handlerRef = Unmanaged.passUnretained(endpoint.handler)
        let settings = endpoint.settings
        let stream = tls.map {
            SecureConnectionStream<Handler>(context: endpoint.context, role: settings.role,
                                            maxBackpressure: settings.maxBackpressure, tls: $0, serverName: serverName)
        } ?? ConnectionStream<Handler>(context: endpoint.context, role: settings.role,
                                       maxBackpressure: settings.maxBackpressure)
        let now = endpoint.context.loop.now
        machine = WebSocketStateMachine(role: settings.role, maxMessageSize: settings.maxMessageSize,
                                        keepAlive: settings.keepAlive, closeTimeout: settings.closeTimeout, now: now)
        streamRef = Unmanaged.passRetained(stream)
        stream.connectionRef = Unmanaged.passUnretained(self)
        // Held for the handle until `streamDidClose`, with a share of the
        // loop's context (its wheel and rings serve the last callbacks).
        _ = Unmanaged.passRetained(self)
        endpoint.context.addUser()
    }

    deinit {
        streamRef.release()
        endpointRef.release()
    }

    var endpoint: Endpoint<Handler> { endpointRef.takeUnretainedValue() }
    var handler: Handler { handlerRef.takeUnretainedValue() }
    var context: LoopContext { contextRef.takeUnretainedValue() }

    /// The server or client this connection belongs to.
    package var owner: AnyObject? { endpoint.owner }
    /// The loop of its server group it lives on (0 alone).
    package var loopIndex: UInt16 { endpoint.loopIndex }

    // MARK: The application's API

    /// True while messages can be sent: the handshake is done and no close has begun.
    public var isOpen: Bool { phase == .frames && machine.isOpen }

    /// Still reading the HTTP head: no WebSocket yet.
    package var isInHTTPPhase: Bool { phase == .http }

    /// Bytes queued in user space, not yet taken by the kernel.
    public var bufferedAmount: Int { stream.queuedCount }

    /// Whether a per-message extension (permessage-deflate) was negotiated.
    public var usesCompression: Bool { machine.usesExtension }

    /// The round-trip time measured by the last keep-alive ping, in milliseconds.
    public var roundTripTime: UInt64? { machine.roundTripTime }

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
    public func send(_ payload: UnsafeRawBufferPointer, type: MessageType, isFinal: Bool = true) -> SendStatus {
        // The thread is checked where the frame is written: the cork's
        // fast path takes only the thread whose read callback holds the
        // cork, and every other path checks it in full (`sendAnyFrame`).
        streamRef._withUnsafeGuaranteedRef { stream in
            guard phase == .frames, let opcode = machine.dataFrame(type: type, isFinal: isFinal) else { return .dropped }
            let status = machine.usesExtension
                ? sendThroughExtension(payload, opcode: opcode, isFinal: isFinal)
                : stream.sendFrame(opcode, fin: isFinal, payload: payload)
            countSent(status, bytes: payload.count, isFinal: isFinal)
            return status
        }
    }

    /// The same, with a say on compression: `compress: false` sends this
    /// message uncompressed even when permessage-deflate was negotiated (data
    /// that is already compressed, or a secret that must not share a
    /// compression context with text an attacker controls). Applies to a
    /// whole message: its first fragment decides.
    @discardableResult
    public func send(_ payload: UnsafeRawBufferPointer, type: MessageType, isFinal: Bool = true, compress: Bool) -> SendStatus {
        if compress || !machine.usesExtension { return send(payload, type: type, isFinal: isFinal) }
        checkThread("WebSocketConnection.send")
        guard phase == .frames, let opcode = machine.dataFrame(type: type, isFinal: isFinal) else { return .dropped }
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
            endpoint.metrics.bytesSent &+= bytes
            if isFinal { endpoint.metrics.messagesSent &+= 1 }
        }
    }

    @inline(never)
    func countDropped() {
        endpoint.metrics.messagesDropped &+= 1
    }

    /// `send(_:type:isFinal:)` for a whole text message.
    @discardableResult
    public func send(text: String) -> SendStatus {
        var text = text
        return text.withUTF8 { send(UnsafeRawBufferPointer($0), type: .text) }
    }

    /// `send(_:type:isFinal:)` for a whole binary message.
    @discardableResult
    public func send(binary: [UInt8]) -> SendStatus {
        binary.withUnsafeBytes { send($0, type: .binary) }
    }

    /// Sends a ping (at most 125 bytes of payload, §5.5). Its pong updates
    /// `roundTripTime`, as the keep-alive pings' do.
    @discardableResult
    public func ping(_ payload: [UInt8] = []) -> SendStatus {
        checkThread("WebSocketConnection.ping")
        guard phase == .frames, payload.count <= 125, machine.pingSent(now: context.loop.now) else { return .dropped }
        return payload.withUnsafeBytes { stream.sendFrame(.ping, fin: true, payload: $0) }
    }

    /// Starts the closing handshake (§7.1.2): sends a close frame and waits for
    /// the peer's, up to the close timeout. `didClose` follows.
    ///
    /// `code` must be one a close frame may carry (RFC 6455 §7.4: 1000–1003,
    /// 1007–1014, 3000–4999). Any other (1005, 1006 and 1015 are local-only
    /// markers; codes under 1000, 1004, 1016–2999 and from 5000 on are
    /// reserved or undefined) is sent as 1011, with `reason`, and logged at
    /// warning level: the peer would otherwise fail the connection with 1002.
    public func close(code: CloseCode = .normalClosure, reason: String = "") {
        checkThread("WebSocketConnection.close")
        guard phase == .frames, machine.startClosing(now: context.loop.now) else { return }
        // The peer's close frame must be read, whatever the application held.
        if stream.readingHeld { stream.resumeReading() }
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
    public func pauseReading() {
        checkThread("WebSocketConnection.pauseReading")
        guard phase == .frames else { return }
        stream.holdReading()
    }

    /// Reading resumes after `pauseReading()` (unless the queue to the peer
    /// still holds it paused for backpressure: its drain resumes it then).
    public func resumeReading() {
        checkThread("WebSocketConnection.resumeReading")
        guard phase == .frames else { return }
        stream.releaseReading()
        // The keep-alive clock restarts from now: nothing was read meanwhile.
        machine.lastRead = max(machine.lastRead, context.loop.now)
    }

    /// Whether the application paused reading (`pauseReading()`).
    public var isReadingPaused: Bool { stream.readingHeld }

    /// The loop this connection lives on (its thread is the only one that
    /// may call it).
    package var eventLoop: EventLoop { context.loop }

    /// True if bytes are queued for the peer; `didDrain` then follows once
    /// the kernel has taken them all (while the connection is open).
    package func notifyWhenDrained() -> Bool {
        checkThread("WebSocketConnection.notifyWhenDrained")
        return stream.notifyWhenDrained()
    }

    /// Sends made in `body` leave in one write when it returns (the loop's
    /// cork), without stopping reads past the limit (`LoopContext.corkBatch`).
    package func sendBatch(_ body: () -> Void) {
        context.corkBatch(body)
    }

    /// Drops the connection at once, without a closing handshake (the handler
    /// hears 1006).
    ///
    /// Inside a handler callback, `didClose` does not run within this call: it
    /// follows from the socket's close callback, later in the same loop turn.
    public func abort() {
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
        endpoint.logger.warning("close code \(code.rawValue) may not be sent (RFC 6455 §7.4); sending 1011")
        return .internalError
    }

    /// For handlers that want whole messages: feed it every chunk from
    /// `didReceive`; it returns the message with its final chunk, else nil. A
    /// message that arrived in one chunk comes back as it is (no copy); one that
    /// spanned frames or reads is joined in a buffer of this connection's. The
    /// view is valid until the next call, and never larger than
    /// `maxMessageSize` (the protocol fails bigger messages with 1009 first).
    public func wholeMessage(_ chunk: UnsafeRawBufferPointer, isFinal: Bool) -> UnsafeRawBufferPointer? {
        checkThread("WebSocketConnection.wholeMessage")
        return assembler.append(chunk, isFinal: isFinal)
    }

    /// One peer's part of a broadcast: a frame built once for every peer. Not
    /// to a connection in the middle of sending a fragmented message (§5.4).
    /// `bytes`: what the application sent (a compressed payload is smaller).
    package func sendPrepared(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                              bytes: Int? = nil) -> SendStatus {
        checkThread("WebSocketServer.broadcast")
        guard phase == .frames, machine.canSendWholeMessage else { return .dropped }
        let status = stream.sendFramed(header: header, payload: payload)
        countSent(status, bytes: bytes ?? payload.count, isFinal: true)
        return status
    }

    /// A subscriber's copy of a publication staged this turn, with the
    /// publication's rules: dropped when the connection is not open, is in
    /// the middle of a fragmented message of its own (§5.4), or already has
    /// `queueLimit` bytes queued (a peer that does not read must not stall
    /// the others or hold more; `.max` when the caller checked already).
    /// The publisher checked the thread.
    package func sendStagedPublication(_ frame: StagedFrame, bytes: Int, queueLimit: Int) -> SendStatus {
        let status = stagePublication(frame, queueLimit: queueLimit)
        countSent(status, bytes: bytes, isFinal: true)
        return status
    }

    /// The same without the counters, which a caller that stages for many
    /// connections of one endpoint adds once (`Topics`' fan-out loop).
    @inline(__always)
    package func stagePublication(_ frame: StagedFrame, queueLimit: Int) -> SendStatus {
        guard phase == .frames, machine.isOpen, machine.canSendWholeMessage else { return .dropped }
        return streamRef._withUnsafeGuaranteedRef { $0.sendStaged(frame, queueLimit: queueLimit) }
    }

    /// One peer's part of a broadcast that is coded for it alone (its own
    /// compression context): a whole message, never inside one of its own
    /// fragmented messages (§5.4).
    package func sendWholeMessage(_ payload: UnsafeRawBufferPointer, type: MessageType) -> SendStatus {
        guard phase == .frames, machine.canSendWholeMessage else { return .dropped }
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
        guard encodingMessage else { return stream.sendFrame(opcode, fin: isFinal, payload: payload) }
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
                let s = stream.sendFrame(first ?? .continuation, fin: end, rsv: first != nil ? ext.rsvBits : 0,
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

/// A client connection's opening handshake in progress. A class, so that a
/// server connection pays one reference for it, not two strings.
package final class ClientHandshakeState {
    package var key: String
    package var request: String
    package init(key: String, request: String) {
        self.key = key
        self.request = request
    }
}

@available(*, unavailable)
extension WebSocketConnection: Sendable {}
