import UVKit
import WebSocketCore

/// HTTP/1.1 persistent connections on the server's plain side (RFC 9112 §9.3):
/// a request that is not an upgrade gets its response and the connection
/// waits for the next, so a page and its assets share one TCP connection and
/// a browser may upgrade the same connection afterwards.
///
/// While a response is under way (`httpResponding`), later requests pile up
/// in the head buffer unparsed, up to its limit (then reading stops until
/// the response ends); they are answered one after another, in order.
extension AnyWebSocketConnection {
    /// Sends part of a response: its head, or a piece of its body. The bytes
    /// are copied if the kernel does not take them all.
    package func sendHTTP(_ bytes: UnsafeRawBufferPointer) {
        guard isInHTTPPhase else { return }
        sendRaw(bytes)
    }

    /// Sends a response head and (a piece of) its body with one write.
    package func sendHTTP(_ head: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer) {
        guard isInHTTPPhase else { return }
        _ = sendFramed(header: head, payload: body)
    }

    /// True if bytes wait in the connection's queue; the endpoint's
    /// `httpDrained` is then called once it empties. False: go on at once.
    package func notifyWhenHTTPQueueDrains() -> Bool {
        isInHTTPPhase && notifyWhenQueueDrains()
    }

    /// Bytes not yet taken by the kernel.
    package var queuedByteCount: Int { queuedCount }

    /// The response to the head of `headLength` bytes is complete. Kept
    /// alive, the connection takes the next pipelined request (if one is
    /// already here) or waits `httpIdleTimeout` for it; otherwise it sends
    /// FIN after the response and closes as `respondAndClose` does.
    package func finishHTTPResponse(headLength: Int, keepAlive: Bool) {
        guard isInHTTPPhase else { return }
        guard keepAlive else {
            freeHead()
            beginDraining()
            return
        }
        head.consume(headLength)
        httpResponding = false
        if httpExchanges < .max { httpExchanges += 1 }
        machine.lastRead = context.loop.now
        // A full buffer of pipelined requests stopped reading.
        try? startReading()
        scheduleDeadline()
        // Inside `headBytesArrived`'s loop, the loop takes the next head.
        if !httpDispatching && head.count > 0 { headBytesArrived(scannedBefore: 0) }
    }

    /// A plain HTTP response is under way (a graceful shutdown lets it end).
    package var isRespondingHTTP: Bool { isInHTTPPhase && httpResponding }

    /// How many responses this connection has finished and kept going.
    package var httpExchangeCount: Int { Int(httpExchanges) }

    /// The deadline of the HTTP phase: a response must make progress (the
    /// peer takes bytes) every `httpSendTimeout`; an idle kept-alive
    /// connection waits `httpIdleTimeout` for its next request; a head being
    /// read must be whole `handshakeTimeout` after the connection (or the
    /// last response) began.
    func httpDeadline() -> UInt64? {
        if httpResponding {
            let timeout = endpointCore.httpSendTimeout
            return timeout > 0 ? max(lastWrite, machine.lastRead) + timeout : nil
        }
        let timeout = httpExchanges > 0 && head.count == 0 ? endpointCore.httpIdleTimeout : endpointCore.settings.handshakeTimeout
        return timeout > 0 ? machine.lastRead + timeout : nil
    }

    func httpDeadlineReached(now: UInt64) {
        if httpResponding {
            // No send timeout (0), or the peer took a byte since the deadline
            // was set: not stalled.
            guard let deadline = httpDeadline() else { return }
            if deadline > now {
                schedule(at: deadline)
                return
            }
            logEvent("HTTP response stalled: the peer takes nothing", ["queued": "\(queuedCount)"])
            abortHTTP()
            return
        }
        if httpExchanges > 0 && head.count == 0 {
            // An idle kept-alive connection: closed without a word (§9.5).
            abortHTTP()
            return
        }
        // Slowloris, or a server that never answers: the head did not come in time.
        httpPhaseEnded(.timedOut)
        closeNow()
    }
}
