import TLSKit
import UVKit
import WebSocketCompression
import WebSocketCore

/// A connection's life around the frames: the HTTP head, the switch to
/// frames, the one way frames end, draining, deadlines and the close callback.
extension AnyWebSocketConnection {
    // MARK: The HTTP head

    func headReadBuffer() -> UnsafeMutableRawBufferPointer {
        head.room(limit: endpointCore.settings.headLimits.maxHeadSize)
    }

    /// Hands every complete head to the endpoint, one at a time: a kept-alive
    /// connection's pipelined requests wait in the buffer until the response
    /// before them ends (RFC 9112 §9.3.2: responses in the order of requests).
    func headBytesArrived(scannedBefore: Int) {
        if httpResponding || httpDispatching { return }
        httpDispatching = true
        defer { httpDispatching = false }
        var scanned = scannedBefore
        while machine.isConnecting && !isClosing && !httpResponding {
            switch HTTPHeadParser.parse(head.view(), limits: endpointCore.settings.headLimits, scannedBefore: scanned) {
            case .incomplete:
                return
            case .failure(let error):
                httpResponding = true
                httpPhaseEnded(.malformed(error))
            case .complete(let request, let length):
                httpResponding = true
                httpPhaseEnded(.head(request, length: length))
            }
            // A response still under way is timed by `httpSendTimeout` from
            // now on, not by the head's deadline.
            if machine.isConnecting && !isClosing && httpResponding { scheduleDeadline() }
            // A response that ended inside the call left the next head (if
            // any) at the front of the buffer, not yet scanned.
            scanned = 0
        }
    }

    /// The bytes of the head buffer past `offset` (a response body, or the
    /// first frames that came with the head).
    package func headBytes(from offset: Int) -> UnsafeRawBufferPointer {
        head.view(from: offset)
    }

    /// Writes an HTTP head (the server's 101) before any frame.
    package func writeHTTP(_ text: String) {
        var text = text
        text.withUTF8 { sendRaw(UnsafeRawBufferPointer($0)) }
    }

    /// The handshake succeeded: frames from now on. Bytes after the head (a
    /// peer may send its first frames in the same segment) are parsed at once.
    package func openWebSocket(headLength: Int, subprotocol: String?, messageExtension: (any MessageExtension)?) {
        self.subprotocol = subprotocol
        if let deflate = messageExtension as? DeflateSending, deflate.sendsWithoutContext {
            sharedCompressionWindow = deflate.sendWindowBits
        }
        let settings = endpointCore.settings
        let now = context.loop.now
        machine = WebSocketStateMachine(role: settings.role, maxMessageSize: settings.maxMessageSize,
                                        keepAlive: settings.keepAlive, closeTimeout: settings.closeTimeout,
                                        messageExtension: messageExtension, now: now)
        clientHandshake = nil
        endpointCore.metrics.webSocketsOpened &+= 1
        logEvent("WebSocket open", ["path": "\(path ?? "")", "subprotocol": "\(subprotocol ?? "none")",
                                    "extension": "\(messageExtension.map { "\(type(of: $0))" } ?? "none")"])
        deliverOpen()
        // Move the early bytes into the loop's ring in pieces it can hold,
        // parsing as they go.
        var offset = headLength
        while offset < head.count && machine.readsFrames {
            let n = context.readRing.write(headBytes(from: offset))
            if n == 0 { break }
            offset += n
            readFrames(now: now)
        }
        stashLeftover()
        freeHead()
        if machine.readsFrames { scheduleDeadline() }
    }

    /// Sends a whole HTTP response (a file, an error status) and ends the connection.
    package func respondAndClose(_ response: [UInt8]) {
        freeHead()
        machine.closeWithoutFrames(now: context.loop.now)
        response.withUnsafeBytes { sendRaw($0) }
        beginDraining()
    }

    /// Drops a connection still in its HTTP phase, without a word.
    package func abortHTTP() {
        freeHead()
        closeNow()
    }

    func freeHead() {
        head.free()
    }

    // MARK: Ending

    /// Fails the connection with `code` (§7.1.7) through the state machine's one
    /// failure path: a close frame if one may still be sent, the handler told once.
    package func fail(_ code: CloseCode, reason: String = "") {
        guard machine.readsFrames else { return }
        guard case .closed(let code, _, let sendClose) = machine.fail(code, now: context.loop.now) else { return }
        var reason = reason
        reason.withUTF8 { framesEnded(code: code, reason: UnsafeRawBufferPointer($0), sendClose: sendClose) }
    }

    /// Frames are over (the peer's close, or a failure): reply if the machine
    /// says so, tell the handler, and drain.
    func framesEnded(code: CloseCode, reason: UnsafeRawBufferPointer, sendClose: Bool) {
        if sendClose { sendCloseFrame(code: code, reason: reason) }
        reportClose(code: code, reason: String(decoding: reason, as: UTF8.self))
        beginDraining()
    }

    func sendCloseFrame(code: CloseCode, reason: UnsafeRawBufferPointer) {
        // A close body is at most 125 bytes (§5.5); build it on the stack.
        var body = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
                    UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &body) { raw in
            let length = ClosePayload.write(code: code, reason: reason, into: raw.baseAddress!)
            _ = sendFrame(.close, fin: true, payload: UnsafeRawBufferPointer(start: raw.baseAddress!, count: length))
        }
    }

    /// The TCP connection ended or failed, or the application aborted: the
    /// handler hears 1006 if frames were not over, and the handle closes.
    func connectionLost() {
        if isClosing { return }
        if machine.isConnecting { httpPhaseEnded(.connectionLost) }
        if let code = machine.connectionLost(now: context.loop.now) { reportClose(code: code, reason: "") }
        closeNow()
    }

    /// Ends the connection at once, from inside a call that found it lost (a
    /// send the kernel refused) or was asked to (`abort()`): the handle closes
    /// now, and a WebSocket's handler hears 1006 from the close callback
    /// (`connectionDidClose`), not from inside this call.
    func loseFromCall() {
        if isClosing { return }
        guard machine.readsFrames else { return connectionLost() }
        lossToReport = machine.connectionLost(now: context.loop.now)
        closeHandle()
    }

    /// The TLS handshake failed: the HTTP phase ends with the reason.
    func tlsFailed(_ failure: TLSFailure) {
        guard machine.isConnecting, !isClosing else { return connectionLost() }
        httpPhaseEnded(.tlsFailed(failure))
        closeNow()
    }

    /// TLS broke after the handshake (a bad record, a refused renegotiation):
    /// like a lost connection (1006), with the reason in the debug log.
    func tlsBroken(_ reason: String) {
        logEvent("TLS connection dropped", ["reason": "\(reason)"])
        connectionLost()
    }

    func reportClose(code: CloseCode, reason: String) {
        endpointCore.metrics.closesByCode[code.rawValue, default: 0] += 1
        logEvent("WebSocket closed", ["code": "\(code.rawValue)", "reason": "\(reason)"])
        deliverClose(code: code, reason: reason)
    }

    /// FIN after what is queued, then wait for the peer's FIN (reads are
    /// discarded) up to the close timeout. Closing at once instead could reset
    /// the connection and destroy the close frame in flight.
    func beginDraining() {
        if isClosing { return }
        // Every drain is timed by the close timeout, never by keep-alive: after
        // an HTTP answer no frames were exchanged, and the machine goes from
        // connecting to closed (draining is a closed machine on an open socket).
        machine.closeWithoutFrames(now: context.loop.now)
        if pausedForBackpressure { resumeReadingForClose() }
        finishWriting()
        // Frames are over: a partial one waiting for more bytes never completes.
        if let l = leftover {
            context.leftoverPool.give(l)
            leftover = nil
        }
        scheduleDeadline()
    }

    func closeNow() {
        if isClosing { return }
        machine.closeWithoutFrames(now: context.loop.now)
        closeHandle()
    }

    /// From the handle's close callback: the last event of a connection. It
    /// reports a loss found inside a call, tells its owner (if still there)
    /// and lets go of the context share `init` took; the close callback then
    /// lets go of the object's hold on itself.
    final func connectionDidClose() {
        if let code = lossToReport {
            lossToReport = nil
            reportClose(code: code, reason: "")
        }
        assembler.deallocate()
        if let l = leftover {
            context.leftoverPool.give(l)
            leftover = nil
        }
        freeHead()
        ownerForgets()
        context.release()
    }

    func queueDidDrain() {
        if isOpen {
            deliverDrain()
        } else if machine.isConnecting && httpResponding && !isClosing {
            httpDrained()
        }
    }

    // MARK: Deadlines

    /// Puts `deadline` (nil: none) on the loop's wheel, in this connection's slot.
    package final func schedule(at deadline: UInt64?) {
        if let deadline { context.wheel.schedule(slot, at: deadline) } else { context.wheel.cancel(slot) }
    }

    /// Puts the connection's next deadline on the loop's wheel.
    func scheduleDeadline() {
        if isClosing {
            schedule(at: nil)
        } else if machine.isConnecting {
            schedule(at: httpDeadline())
        } else {
            machine.lastWrite = max(machine.lastWrite, lastWrite)
            schedule(at: machine.nextDeadline(now: context.loop.now))
        }
    }

    func deadlineReached(now: UInt64) {
        if isClosing { return }
        if machine.isConnecting {
            httpDeadlineReached(now: now)
            return
        }
        machine.lastWrite = max(machine.lastWrite, lastWrite)
        // The application holds reading: a pong could not be read, and
        // the stall is ours, so the peer counts as heard from now.
        if readingHeld { machine.lastRead = now }
        switch machine.deadlineReached(now: now, readingPaused: pausedForBackpressure) {
        case .none:
            break
        case .sendPing:
            endpointCore.metrics.pingsSent &+= 1
            _ = sendFrame(.ping, fin: true, payload: UnsafeRawBufferPointer(start: nil, count: 0))
        case .peerIsDead:
            // §7.4.1: 1011 if we can still write; a peer whose socket does
            // not take even that is dropped.
            endpointCore.metrics.deadPeersClosed &+= 1
            logEvent("keep-alive timeout: no frame since the ping", ["queued": "\(queuedCount)"])
            if queuedCount == 0 { fail(.internalError, reason: "keep-alive timeout") } else { abort() }
            return
        case .abort:
            connectionLost()
            return
        }
        scheduleDeadline()
    }
}

/// How a connection's HTTP phase ended, for its server or client to act on.
package enum HTTPPhaseOutcome {
    /// The head arrived whole; `length` bytes of the buffer are the head.
    case head(HTTPHead, length: Int)
    /// The head could not be parsed (its status says how to answer).
    case malformed(HTTPHeadError)
    /// The peer closed or failed before the head was complete.
    case connectionLost
    /// The handshake timeout passed.
    case timedOut
    /// The TLS handshake failed (before any HTTP byte).
    case tlsFailed(TLSFailure)
}
