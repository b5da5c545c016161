import UVKit
import WebSocketCore

/// The write funnel: every byte a connection writes passes through here,
/// frames, HTTP heads and staged publications alike. It owns the loop's cork
/// while it writes, the by-reference `writev`, the queue and backpressure;
/// with TLS, `writeNow` hands the plaintext to the codec and the sealed
/// records come back through `writeCiphertext`. Loop thread only.
extension AnyWebSocketConnection {
    // MARK: Writing

    /// Frames and writes one frame. A small one with nothing queued goes into
    /// the loop's cork; any other goes through `sendFramed`, behind the queue or
    /// by reference (masked copies in the client role, since the caller's
    /// bytes may not be changed).
    ///
    /// Inlined into `send`, this is the whole of a server's reply in a read
    /// callback once the cork is its own: a short frame appended with nothing
    /// queued cannot pass a backpressure limit, so it reports `.sent` without
    /// looking. The rest is out of line, so that `send` saves no registers
    /// for it (callgrind, per 16 B echo: the send and its framing took 165
    /// instructions with all of it inlined into a closure of their own, 94 so).
    @inline(__always)
    package final func sendFrame(_ opcode: Opcode, fin: Bool, rsv: UInt8 = 0, payload: UnsafeRawBufferPointer) -> SendStatus {
        if role == .server && rsv == 0 && payload.count < 126 && outbound.isEmpty && !writesClosed
            && contextRef._withUnsafeGuaranteedRef({
                $0.corkShortFrame(for: self, opcode: opcode, fin: fin, payload: payload)
            }) {
            return .sent
        }
        return sendAnyFrame(opcode, fin: fin, rsv: rsv, payload: payload)
    }

    @inline(never)
    final func sendAnyFrame(_ opcode: Opcode, fin: Bool, rsv: UInt8, payload: UnsafeRawBufferPointer) -> SendStatus {
        context.loop.checkThread("WebSocketConnection.send")
        if writesClosed { return .dropped }
        if outbound.isEmpty && payload.count < AnyWebSocketConnection.byReferenceThreshold {
            let corked = contextRef._withUnsafeGuaranteedRef { context in
                let key: UInt32? = role == .client ? context.maskKeys.next() : nil
                return context.cork(self, opcode: opcode, fin: fin, rsv: rsv, payload: payload, maskKey: key)
            }
            if corked { return checkBackpressure() }
        }
        return sendUncorked(opcode, fin: fin, rsv: rsv, payload: payload)
    }

    // Out of line: its header buffer on the stack would otherwise cost the
    // corked path a stack-protector check per message (callgrind: 9 instructions).
    @inline(never)
    final func sendUncorked(_ opcode: Opcode, fin: Bool, rsv: UInt8, payload: UnsafeRawBufferPointer) -> SendStatus {
        if role == .client { return sendMasked(opcode, fin: fin, rsv: rsv, payload: payload) }
        return FrameWriter.withHeader(opcode: opcode, fin: fin, rsv: rsv, payloadLength: payload.count) {
            sendFramed(header: $0, payload: payload)
        }
    }

    /// A client frame too large for the cork. The payload must be masked, and
    /// the caller's bytes may not change, so it is masked a slice at a time
    /// into the loop's scratch buffer and each slice written at once, behind
    /// what the cork holds for this connection: the kernel usually takes it all,
    /// and only what it refuses is copied to the queue (masked on the way).
    final func sendMasked(_ opcode: Opcode, fin: Bool, rsv: UInt8, payload: UnsafeRawBufferPointer) -> SendStatus {
        if outbound.count > hardQueueLimit { return .dropped }
        let key = contextRef._withUnsafeGuaranteedRef { $0.maskKeys.next() }
        FrameWriter.withHeader(opcode: opcode, fin: fin, rsv: rsv, payloadLength: payload.count, maskKey: key) { header in
            if !outbound.isEmpty && tls == nil {
                outbound.append(header)
                outbound.appendMasked(payload, key: key)
                startQueuedWrite()
                return
            }
            let scratch = context.scratch
            var pending = context.takeCorked(for: self)
            var header = header
            var offset = 0
            var phase = 0
            repeat {
                let n = min(scratch.count, payload.count - offset)
                if n > 0 {
                    scratch.baseAddress!.copyMemory(from: payload.baseAddress! + offset, byteCount: n)
                    phase = Masking.apply(key: key, phase: phase, to: scratch.baseAddress!, count: n)
                }
                writeNow(pending, header, UnsafeRawBufferPointer(start: scratch.baseAddress, count: n))
                pending = UnsafeRawBufferPointer(start: nil, count: 0)
                header = UnsafeRawBufferPointer(start: nil, count: 0)
                offset += n
                if writesClosed { return }
                // With TLS every slice is sealed as it goes (the queue holds
                // ciphertext), so only a plain connection stops here.
                if !outbound.isEmpty && tls == nil {
                    // The socket is full: the rest waits in the queue.
                    outbound.appendMasked(UnsafeRawBufferPointer(rebasing: payload[offset...]), key: key, phase: phase)
                    startQueuedWrite()
                    return
                }
            } while offset < payload.count
        }
        return checkBackpressure()
    }

    /// Sends a frame whose header is built (a broadcast builds it once for all
    /// peers). Bytes already queued go first, so with a queue the frame is
    /// copied behind it; otherwise what this connection has corked, the header
    /// and the payload (by reference) leave in one writev, and only what the
    /// kernel refuses is copied. Both views need only live for the call.
    package final func sendFramed(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> SendStatus {
        if writesClosed { return .dropped }
        if !outbound.isEmpty {
            if outbound.count > hardQueueLimit { return .dropped }
            if let tls {
                tls.seal(header, payload, UnsafeRawBufferPointer(start: nil, count: 0), on: self)
                return checkBackpressure()
            }
            outbound.append(header)
            outbound.append(payload)
            startQueuedWrite()
        } else {
            writeNow(context.takeCorked(for: self), header, payload)
        }
        return checkBackpressure()
    }

    /// A publication staged this turn (`LoopContext.stageFrame`), for this
    /// connection: referenced, written at the end of the turn with the others
    /// staged for it. A connection with a queue, or TLS, takes it at once
    /// through `sendFramed` instead.
    /// A connection whose queue holds `queueLimit` bytes or more gets it
    /// dropped.
    @inline(__always)
    package final func sendStaged(_ frame: StagedFrame, queueLimit: Int) -> SendStatus {
        if writesClosed || outbound.count >= queueLimit { return .dropped }
        return contextRef._withUnsafeGuaranteedRef { context in
            // Corked bytes of this connection's are older: they go first.
            if context.corkIsOwned(by: self) { context.flushCork() }
            if tls != nil || !outbound.isEmpty {
                return sendFramed(header: context.bytes(of: frame), payload: UnsafeRawBufferPointer(start: nil, count: 0))
            }
            context.staging.add(slot: slot, offset: frame.offset, length: frame.length)
            hasStaged = true
            return .sent
        }
    }

    /// Writes what is staged for this connection, in one write when it fits
    /// the staging's gather buffer; what the kernel does not take is copied
    /// to the queue.
    final func writeStaged() {
        hasStaged = false
        let (pieces, count) = contextRef._withUnsafeGuaranteedRef { context in
            context.staging.take(slot: slot)
            return (context.staging.pieces, context.staging.pieceCount)
        }
        if writesClosed || count == 0 { return }
        // Several small frames are gathered into the loop's scratch buffer and
        // written as one piece: the kernel copies one segment faster than many
        // short ones (measured on the fan-out benchmark).
        if count > 1 {
            // The staging's own buffer, not the loop's scratch: a caller of
            // `writeToSocket` may be writing from the scratch.
            let gather = contextRef._withUnsafeGuaranteedRef { $0.staging.gather }
            var total = 0
            for i in 0..<count { total &+= pieces[i].length }
            if total <= gather.count {
                var offset = 0
                for i in 0..<count {
                    (gather.baseAddress! + offset).copyMemory(from: pieces[i].base!, byteCount: pieces[i].length)
                    offset &+= pieces[i].length
                }
                pieces[0] = IOPiece(base: gather.baseAddress, length: total)
                writeStagedPieces(pieces, count: 1)
                return
            }
        }
        writeStagedPieces(pieces, count: count)
    }

    /// Writes `count` pieces, up to 1024 (Linux's IOV_MAX) per `writev`;
    /// what the kernel does not take is copied to the queue.
    private func writeStagedPieces(_ pieces: UnsafeMutablePointer<IOPiece>, count: Int) {
        var start = 0
        while start < count {
            let n = min(1024, count - start)
            let written: Int
            do { written = writesInFlight > 0 ? 0 : try handle.trySend(pieces: pieces + start, count: n) } catch {
                writeFailed()
                return
            }
            if written > 0 { lastWrite = contextRef._withUnsafeGuaranteedRef { $0.loop.now } }
            var total = 0
            for i in start..<(start + n) { total &+= pieces[i].length }
            if written < total {
                var skip = written
                for i in start..<count {
                    skip = queueUnwritten(UnsafeRawBufferPointer(start: pieces[i].base, count: pieces[i].length), skipping: skip)
                }
                startQueuedWrite()
                break
            }
            start += n
        }
        _ = checkBackpressure()
    }

    /// Writes bytes that are not a frame (an HTTP head), in order with frames.
    package final func sendRaw(_ bytes: UnsafeRawBufferPointer) {
        _ = sendFramed(header: bytes, payload: UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// Writes up to three pieces with one try-write (`TCPHandle.trySend`) and queues (copies) only
    /// what the kernel did not take. Only with nothing queued (or with TLS,
    /// whose sealed records go behind the queue).
    final func writeNow(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                        _ c: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        if let tls {
            tls.seal(a, b, c, on: self)
            return
        }
        writeToSocket(a, b, c)
    }

    /// Records sealed by TLS: behind the queue if there is one, else written now.
    final func writeCiphertext(_ bytes: UnsafeRawBufferPointer) {
        if writesClosed { return }
        if outbound.isEmpty {
            writeToSocket(bytes)
        } else {
            outbound.append(bytes)
            startQueuedWrite()
        }
    }

    private func writeToSocket(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                               _ c: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        guard !writesClosed else { return }
        if hasStaged {
            // Staged publications came first; what the kernel left of them
            // queues, and these pieces behind it.
            writeStaged()
            if !outbound.isEmpty {
                outbound.append(a)
                outbound.append(b)
                outbound.append(c)
                startQueuedWrite()
                return
            }
            if writesClosed { return }
        }
        var written: Int
        do {
            written = writesInFlight > 0 ? 0
                : try handle.trySend(a.count > 0 ? a : b, a.count > 0 ? b : c, a.count > 0 ? c : UnsafeRawBufferPointer(start: nil, count: 0))
        } catch {
            writeFailed()
            return
        }
        // Lent, not loaded: `context` would retain and release it per write.
        if written > 0 { lastWrite = contextRef._withUnsafeGuaranteedRef { $0.loop.now } }
        // The usual case: the kernel took every byte, so there is nothing to
        // queue and, with the queue empty, no queued write to start.
        if written == a.count &+ b.count &+ c.count && outbound.isEmpty { return }
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

    final func startQueuedWrite() {
        guard !writesClosed, let bytes = outbound.takePendingForWrite() else { return }
        do {
            try queueWrite(bytes)
        } catch {
            outbound.completeWrite()
            writeFailed()
        }
    }

    final func didCompleteWrite(_ error: UVError?) {
        outbound.completeWrite()
        if writesClosed { return }
        if error != nil {
            writeFailed()
            return
        }
        lastWrite = contextRef._withUnsafeGuaranteedRef { $0.loop.now }
        startQueuedWrite()
        if pausedForBackpressure && outbound.count <= maxBackpressure / 2 {
            pausedForBackpressure = false
            if !readingHeld { try? startReading() }
        }
        if owesDrainEvent && outbound.isEmpty {
            owesDrainEvent = false
            queueDidDrain()
        }
    }

    /// Bytes queued in user space, not yet taken by the kernel.
    package final var queuedCount: Int { outbound.count }

    /// A write failed (the kernel refused, or TLS could not seal): writes are
    /// over, and the connection is lost, reported after the current call.
    final func writeFailed() {
        writesClosed = true
        // Often inside a send, so inside a handler's callback: the loss is
        // reported from the close callback (`loseFromCall`).
        loseFromCall()
    }

    /// Sends FIN after what is corked and queued (and TLS's close_notify);
    /// reading goes on.
    package final func finishWriting() {
        context.flushCork(ifOwner: self)
        // FIN goes after every byte of this turn, staged publications too.
        if hasStaged { writeStaged() }
        tls?.sendCloseNotify(on: self)
        shutdownWriting()
    }
}
