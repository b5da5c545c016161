import UVKit
import WebSocketCore

/// One client connection, from the first byte of its HTTP request to its close.
///
/// Owned by the server's connection table from accept until libuv's close
/// callback; all of it runs on the loop thread. Handlers get it in every call
/// and may keep it (strongly) for later sends; after `didClose` it only drops
/// what is sent.
public final class WebSocketConnection<Handler: WebSocketHandler>: TCPStream {
    enum State {
        /// Reading the HTTP request head.
        case handshake
        /// WebSocket frames flow both ways.
        case open
        /// We sent a close frame and await the peer's (RFC 6455 §7.1.2).
        case closeSent
        /// Done with frames or HTTP: FIN sent after the queued writes, reads
        /// discarded until the peer's FIN or the close timeout.
        case draining
        /// The handle is closing.
        case closed
    }

    /// The server, not counted: it outlives its connections. The per-message
    /// path lends it with `_withUnsafeGuaranteedRef`, which is not retained
    /// around the call.
    let serverRef: Unmanaged<WebSocketServer<Handler>>
    /// The server's handler, held the same way.
    let handlerRef: Unmanaged<Handler>
    /// The server this connection belongs to, for handlers that reach the other
    /// connections (`broadcast`, `forEachOpenConnection`). It outlives them all.
    public var server: WebSocketServer<Handler> { serverRef.takeUnretainedValue() }
    var handler: Handler { handlerRef.takeUnretainedValue() }
    let slot: Int32
    @exclusivity(unchecked) var state = State.handshake

    // Handshake: the request head, read into its own buffer (freed after).
    var head: UnsafeMutableRawPointer?
    var headCount = 0
    var headCapacity = 0

    // Frames. These are reached only from the loop thread, so the dynamic
    // exclusivity checks Swift adds to class properties passed inout (a third
    // of the server's user-space time per message, measured) are switched off
    // for them.
    @exclusivity(unchecked) var parser: FrameParser
    /// What the last read left unparsed (a partial frame header or control
    /// frame), borrowed from the server's pool until the next read.
    @exclusivity(unchecked) var leftover: ByteRing?
    @exclusivity(unchecked) var outbound = OutboundQueue()
    /// The last data frame we sent had FIN clear: the next one is a continuation.
    @exclusivity(unchecked) var sendingFragmented = false
    @exclusivity(unchecked) var pausedForBackpressure = false
    @exclusivity(unchecked) var owesDrainEvent = false
    @exclusivity(unchecked) var closeReported = false

    // Clocks, in the loop's milliseconds.
    @exclusivity(unchecked) var acceptedAt: UInt64
    @exclusivity(unchecked) var lastRead: UInt64
    @exclusivity(unchecked) var lastWrite: UInt64
    @exclusivity(unchecked) var pingSentAt: UInt64?
    @exclusivity(unchecked) var closeStartedAt: UInt64 = 0

    /// The round-trip time measured by the last keep-alive ping, in milliseconds.
    @exclusivity(unchecked) public private(set) var roundTripTime: UInt64?
    /// The subprotocol agreed in the handshake.
    public internal(set) var subprotocol: String?
    /// The request path the WebSocket was opened on.
    public internal(set) var path: String?
    /// Per-connection state for the application.
    public var userInfo: AnyObject?
    /// Joins chunks for `wholeMessage`; holds memory only while a message spans reads.
    var assembler = MessageAssembler()

    init(server: WebSocketServer<Handler>, slot: Int32) {
        self.serverRef = Unmanaged.passUnretained(server)
        self.handlerRef = Unmanaged.passUnretained(server.handler)
        self.slot = slot
        self.parser = FrameParser(role: .server, maxMessageSize: UInt64(server.options.maxMessageSize))
        let now = server.loop.now
        acceptedAt = now
        lastRead = now
        lastWrite = now
        super.init(loop: server.loop)
    }

    /// For handlers that want whole messages: feed it every chunk from
    /// `didReceive`; it returns the message with its final chunk, else nil. A
    /// message that arrived in one chunk comes back as it is (no copy); one that
    /// spanned frames or reads is joined in a buffer of this connection's. The
    /// view is valid until the next call, and never larger than
    /// `maxMessageSize` (the parser fails bigger messages with 1009 first).
    public func wholeMessage(_ chunk: UnsafeRawBufferPointer, isFinal: Bool) -> UnsafeRawBufferPointer? {
        assembler.append(chunk, isFinal: isFinal)
    }

    /// Bytes queued in user space, not yet taken by the kernel.
    public var bufferedAmount: Int { outbound.count }

    public var isOpen: Bool { state == .open }

    // MARK: Reading

    public override func readBuffer() -> UnsafeMutableRawBufferPointer {
        switch state {
        case .handshake:
            return headReadBuffer()
        case .open, .closeSent:
            // Reads land in the loop's ring, behind what this connection's last
            // read left unparsed. The ring is empty between callbacks; reset it
            // anyway, in case a read ended in an error after the last allocation.
            return serverRef._withUnsafeGuaranteedRef { server in
                server.readRing.reset()
                if var l = leftover {
                    l.move(to: &server.readRing)
                    server.leftoverPool.give(l)
                    leftover = nil
                }
                return server.readRing.writableRegion
            }
        case .draining, .closed:
            return server.discardBuffer
        }
    }

    // The read path below runs in this generic class's unspecialized code (a
    // vtable call from UVKit), where every use of `server` or `handler` would
    // retain and release it; `serverRef` and `handlerRef` lend them instead.
    public override func didRead(_ count: Int) {
        if count > 0 { lastRead = serverRef._withUnsafeGuaranteedRef { $0.loop.now } }
        switch state {
        case .handshake:
            if count > 0 {
                let scanned = headCount
                headCount += count
                handshakeBytesArrived(scannedBefore: scanned)
            }
        case .open, .closeSent:
            serverRef._withUnsafeGuaranteedRef { server in
                server.metrics.bytesReceived &+= count
                server.readRing.commitWrite(count)
            }
            readFrames()
        case .draining, .closed:
            break
        }
        stashLeftover()
    }

    public override func didRunOutOfReadBuffer() {
        // Only the handshake can fill its buffer, and the parser reports 431
        // before that; a full ring means a peer we stopped reading for anyway.
        stopReading()
    }

    public override func didReachEnd(_ error: UVError?) {
        switch state {
        case .draining, .closed:
            closeNow()
        default:
            reportClose(code: .abnormalClosure, reason: "")
            closeNow()
        }
    }

    /// Parses and dispatches every complete event in the ring. Replies made
    /// meanwhile are corked; the server's check handle writes them once the
    /// poll phase of this loop iteration ends.
    func readFrames() {
        serverRef._withUnsafeGuaranteedRef { server in
            server.beginCork()
            readFrames(server)
            server.endCork()
        }
    }

    private func readFrames(_ server: WebSocketServer<Handler>) {
        while state == .open || state == .closeSent {
            switch parser.next(&server.readRing) {
            case .needMoreData:
                return
            case .data(let chunk, let type, let isFinal):
                if isFinal { server.metrics.messagesReceived &+= 1 }
                handlerRef._withUnsafeGuaranteedRef { $0.didReceive(self, chunk: chunk, type: type, isFinal: isFinal) }
            case .ping(let payload):
                // §5.5.2: answer with a pong carrying the same payload; once our
                // close is out, nothing more may follow it (§5.5.1).
                if state == .open { _ = sendFrame(.pong, fin: true, payload: payload) }
            case .pong(let payload):
                if let sent = pingSentAt {
                    roundTripTime = server.loop.now - sent
                    pingSentAt = nil
                }
                handlerRef._withUnsafeGuaranteedRef { $0.didReceivePong(self, payload: payload) }
            case .close(let code, let reason):
                // §5.5.1: reply with the peer's code (and reason, as the article's
                // echo does), unless we already sent our close.
                if state == .open { _ = sendClose(code: code, reason: reason) }
                reportClose(code: code, reason: String(decoding: reason, as: UTF8.self))
                beginDraining()
                return
            case .failure(let code):
                // §7.1.7: fail the connection, telling the peer why.
                if state == .open { _ = sendClose(code: code, reason: UnsafeRawBufferPointer(start: nil, count: 0)) }
                reportClose(code: code, reason: "")
                beginDraining()
                return
            }
        }
    }

    /// Empties the loop's ring after a read: what the parser left (a partial
    /// header or control frame; payloads stream out as they arrive) goes to a
    /// small ring of this connection's until its next read.
    func stashLeftover() {
        serverRef._withUnsafeGuaranteedRef { server in
            if !server.readRing.isEmpty && (state == .open || state == .closeSent) {
                let count = server.readRing.count
                // At most 131 bytes by the parser's rules; a pooled ring holds 256.
                var l = count <= server.leftoverPool.ringCapacity
                    ? server.leftoverPool.take() : ByteRing(capacity: ByteRing.capacity(atLeast: count))
                server.readRing.move(to: &l)
                leftover = l
            }
            server.readRing.reset()
        }
    }

    // MARK: Sending

    /// Sends a message, or one fragment of it. Successive calls with `isFinal`
    /// false send one fragmented message (the first frame has `type`'s opcode, the
    /// rest are continuations), which is how an echo returns a message chunk by
    /// chunk. `payload` is copied or written before this returns.
    @discardableResult
    public func send(_ payload: UnsafeRawBufferPointer, type: MessageType, isFinal: Bool = true) -> SendStatus {
        guard state == .open else { return .dropped }
        let opcode: Opcode = sendingFragmented ? .continuation : type.opcode
        let status = sendFrame(opcode, fin: isFinal, payload: payload)
        if status != .dropped {
            sendingFragmented = !isFinal
            if isFinal { server.metrics.messagesSent &+= 1 }
        }
        return status
    }

    @discardableResult
    public func send(text: String) -> SendStatus {
        var text = text
        return text.withUTF8 { send(UnsafeRawBufferPointer($0), type: .text) }
    }

    @discardableResult
    public func send(binary: [UInt8]) -> SendStatus {
        binary.withUnsafeBytes { send($0, type: .binary) }
    }

    /// Sends a ping (at most 125 bytes of payload).
    @discardableResult
    public func ping(_ payload: [UInt8] = []) -> SendStatus {
        guard state == .open, payload.count <= 125 else { return .dropped }
        return payload.withUnsafeBytes { sendFrame(.ping, fin: true, payload: $0) }
    }

    /// Starts the closing handshake (§7.1.2): sends a close frame and waits for
    /// the peer's, up to `closeTimeout`. `didClose` follows.
    public func close(code: CloseCode = .normalClosure, reason: String = "") {
        guard state == .open else { return }
        var reason = reason
        reason.withUTF8 { _ = sendClose(code: code, reason: UnsafeRawBufferPointer($0)) }
        state = .closeSent
        closeStartedAt = server.loop.now
        scheduleTimer()
    }

    /// Drops the connection at once, without a closing handshake.
    public func abort() {
        reportClose(code: .abnormalClosure, reason: "")
        closeNow()
    }

    func sendClose(code: CloseCode, reason: UnsafeRawBufferPointer) -> SendStatus {
        // A close body is at most 125 bytes (§5.5); build it on the stack.
        var body = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
                    UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &body) { raw in
            let length = ClosePayload.write(code: code, reason: reason, into: raw.baseAddress!)
            return sendFrame(.close, fin: true, payload: UnsafeRawBufferPointer(start: raw.baseAddress!, count: length))
        }
    }

    /// Frames and writes one frame. A small one with nothing queued goes into
    /// the loop's cork (written once per loop iteration); any other goes
    /// through `sendFramed`, behind the queue or by reference.
    func sendFrame(_ opcode: Opcode, fin: Bool, payload: UnsafeRawBufferPointer) -> SendStatus {
        // The cork may only hold a connection's bytes while its queue is empty.
        // It refuses, copying nothing, when making room flushed our earlier
        // bytes and the kernel left some queued: the frame then queues behind.
        if outbound.isEmpty && payload.count < server.byReferenceThreshold {
            let corked = serverRef._withUnsafeGuaranteedRef { $0.cork(self, opcode: opcode, fin: fin, payload: payload) }
            if corked {
                server.metrics.bytesSent &+= payload.count
                return checkBackpressure()
            }
        }
        return sendUncorked(opcode, fin: fin, payload: payload)
    }

    // Out of line: its header buffer on the stack would otherwise cost the
    // corked path a stack-protector check per message (callgrind: 9 instructions).
    @inline(never)
    func sendUncorked(_ opcode: Opcode, fin: Bool, payload: UnsafeRawBufferPointer) -> SendStatus {
        FrameWriter.withHeader(opcode: opcode, fin: fin, payloadLength: payload.count) {
            sendFramed(header: $0, payload: payload)
        }
    }

    /// Sends a frame whose header is built (a broadcast builds it once for all
    /// peers). Order: bytes already queued go first, so with a queue the frame
    /// is copied behind it; otherwise what this connection has corked, the
    /// header and the payload (by reference) leave in one writev, and only what
    /// the kernel refuses is copied. Both views need only live for the call.
    func sendFramed(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> SendStatus {
        if !outbound.isEmpty {
            if outbound.count > server.hardQueueLimit { return .dropped }
            outbound.append(header)
            outbound.append(payload)
            startQueuedWrite()
        } else {
            writeNow(server.takeCorked(for: self), header, payload)
        }
        server.metrics.bytesSent &+= payload.count
        return checkBackpressure()
    }

    /// Writes up to three pieces with one `uv_try_write` and queues (copies) only
    /// what the kernel did not take.
    func writeNow(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                  _ c: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        guard state != .closed else { return }
        var written: Int
        do {
            written = try tryWrite(a.count > 0 ? a : b, a.count > 0 ? b : c, a.count > 0 ? c : UnsafeRawBufferPointer(start: nil, count: 0))
        } catch {
            reportClose(code: .abnormalClosure, reason: "")
            closeNow()
            return
        }
        if written > 0 { lastWrite = server.loop.now }
        written = queueUnwritten(a, skipping: written)
        written = queueUnwritten(b, skipping: written)
        _ = queueUnwritten(c, skipping: written)
        startQueuedWrite()
    }

    /// Copies the part of `piece` past the first `written` bytes to the queue;
    /// returns how many of `written` are left for the pieces after it.
    private func queueUnwritten(_ piece: UnsafeRawBufferPointer, skipping written: Int) -> Int {
        if written >= piece.count { return written - piece.count }
        outbound.append(UnsafeRawBufferPointer(rebasing: piece[written...]))
        return 0
    }

    func startQueuedWrite() {
        guard state != .closed, let bytes = outbound.takePendingForWrite() else { return }
        do {
            try write(bytes)
        } catch {
            outbound.completeWrite()
            reportClose(code: .abnormalClosure, reason: "")
            closeNow()
        }
    }

    public override func didCompleteWrite(_ error: UVError?) {
        outbound.completeWrite()
        if state == .closed { return }
        if error != nil {
            reportClose(code: .abnormalClosure, reason: "")
            closeNow()
            return
        }
        lastWrite = server.loop.now
        startQueuedWrite()
        if pausedForBackpressure && outbound.count <= server.maxBackpressure / 2 {
            pausedForBackpressure = false
            if state == .open || state == .closeSent { try? startReading() }
        }
        if owesDrainEvent && outbound.isEmpty {
            owesDrainEvent = false
            if state == .open { handler.didDrain(self) }
        }
    }

    /// Past `maxBackpressure`, stop reading from this peer: a client that sends
    /// without reading can then not grow our memory past the limit plus a ring.
    @inline(__always)
    func checkBackpressure() -> SendStatus {
        // Nothing queued, the usual case after a send: no limit can be passed.
        if outbound.isEmpty { return .sent }
        return checkQueuedBackpressure()
    }

    func checkQueuedBackpressure() -> SendStatus {
        if outbound.count > server.maxBackpressure {
            owesDrainEvent = true
            // A draining connection keeps reading: it waits for the peer's FIN.
            if !pausedForBackpressure && (state == .open || state == .closeSent) {
                pausedForBackpressure = true
                stopReading()
            }
            return .backpressure
        }
        return .sent
    }

    // MARK: Closing

    /// Tells the handler once that the connection is over. From here on the
    /// connection is out of the open states, so sends made from `didClose` are
    /// dropped.
    func reportClose(code: CloseCode, reason: String) {
        if closeReported { return }
        closeReported = true
        server.metrics.closesByCode[code.rawValue, default: 0] += 1
        let wasWebSocket = state == .open || state == .closeSent
        state = state == .closed ? .closed : .draining
        if wasWebSocket { handler.didClose(self, code: code, reason: reason) }
    }

    /// Frames are done: send FIN after what is queued, then wait for the peer's
    /// FIN (reads are discarded) up to the close timeout. Closing at once instead
    /// could reset the connection and destroy the close frame in flight.
    func beginDraining() {
        guard state != .closed else { return }
        state = .draining
        server.flushCork(ifOwner: self)
        closeStartedAt = server.loop.now
        if pausedForBackpressure {
            pausedForBackpressure = false
        }
        try? startReading()
        shutdown()
        // Frames are over: a partial one waiting for more bytes never completes.
        if let l = leftover {
            server.leftoverPool.give(l)
            leftover = nil
        }
        scheduleTimer()
    }

    public override func didShutdown(_ error: UVError?) {
        if error != nil { closeNow() }
    }

    func closeNow() {
        if state == .closed && isClosing { return }
        state = .closed
        server.forgetCork(self)
        server.wheel.cancel(slot)
        stopReading()
        close()
    }

    public override func didClose() {
        outbound.deallocate()
        assembler.deallocate()
        if let l = leftover {
            server.leftoverPool.give(l)
            leftover = nil
        }
        head?.deallocate()
        head = nil
        server.connectionDidClose(self)
    }

    // MARK: Timers

    /// Puts the connection's next deadline on the server's timing wheel.
    func scheduleTimer() {
        let options = server.timeouts
        switch state {
        case .handshake:
            if options.handshake > 0 { server.wheel.schedule(slot, at: acceptedAt + options.handshake) }
        case .open:
            let (_, next) = server.keepAlive.evaluate(now: server.loop.now, lastRead: lastRead,
                                                      lastWrite: lastWrite, pingSentAt: pingSentAt)
            if let next { server.wheel.schedule(slot, at: next) } else { server.wheel.cancel(slot) }
        case .closeSent, .draining:
            server.wheel.schedule(slot, at: closeStartedAt + options.close)
        case .closed:
            server.wheel.cancel(slot)
        }
    }

    /// The wheel reached this connection's deadline.
    func timerExpired(now: UInt64) {
        switch state {
        case .handshake:
            // Slowloris: the head did not arrive in time. Drop without a word.
            server.metrics.handshakesRejected &+= 1
            closeNow()
        case .open:
            // While we have stopped reading (backpressure) the peer's pong may sit
            // unread in the socket: then the peer taking our bytes is the proof of
            // life, not what we read. This avoids the spurious keep-alive timeouts
            // under load that Python websockets users report.
            let alive = pausedForBackpressure ? max(lastRead, lastWrite) : lastRead
            if let sent = pingSentAt, alive > sent { pingSentAt = nil }
            let (decision, _) = server.keepAlive.evaluate(now: now, lastRead: alive, lastWrite: lastWrite,
                                                          pingSentAt: pingSentAt)
            switch decision {
            case .nothing:
                break
            case .sendPing:
                if pingSentAt == nil { pingSentAt = now }
                server.metrics.pingsSent &+= 1
                _ = sendFrame(.ping, fin: true, payload: UnsafeRawBufferPointer(start: nil, count: 0))
                lastWrite = now
            case .peerIsDead:
                // §7.4.1: 1011 if we can still write; a peer whose socket does not
                // take even that is dropped.
                server.metrics.deadPeersClosed &+= 1
                if outbound.isEmpty {
                    _ = sendClose(code: .internalError, reason: UnsafeRawBufferPointer(start: nil, count: 0))
                    reportClose(code: .internalError, reason: "keep-alive timeout")
                    beginDraining()
                } else {
                    abort()
                }
                return
            }
            scheduleTimer()
        case .closeSent, .draining:
            if now >= closeStartedAt + server.timeouts.close {
                reportClose(code: .abnormalClosure, reason: "")
                closeNow()
            } else {
                scheduleTimer()
            }
        case .closed:
            break
        }
    }
}
