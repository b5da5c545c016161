import UVKit
import WebSocketCore

/// The transport seam: every byte a connection reads or writes passes through
/// here, between the connection and the TCP stream. It owns the write side
/// (the loop's cork, the by-reference `writev`, the outbound queue and
/// backpressure) and hands reads to its connection. TLS plugs in here: its
/// subclass decrypts into the buffer the parser reads and encrypts what the
/// cork and the queue hold, and the connection above does not change.
///
/// Not generic, so the cork, the wheel and the flush reach it with direct calls
/// whatever the connection's handler type. Loop thread only.
package class Transport: TCPStream {
    // Fields in order of size: a class is laid out as declared, and there is
    // one of these per connection.

    /// The loop's context, not counted (the connection's endpoint holds it).
    /// Lent with `_withUnsafeGuaranteedRef` on the per-message path: loading
    /// an `unowned(unsafe)` reference into a value retains it (callgrind: a
    /// retain and a release per message, about 40 instructions).
    let contextRef: Unmanaged<LoopContext>
    package var context: LoopContext { contextRef.takeUnretainedValue() }
    /// When the kernel last took bytes, in the loop's milliseconds.
    @exclusivity(unchecked) package var lastWrite: UInt64
    @exclusivity(unchecked) var outbound = OutboundQueue()
    /// Its deadline's slot in the context's wheel.
    @exclusivity(unchecked) package private(set) var slot: Int32 = -1
    /// 32 bits, so that it packs beside the slot (larger limits are clamped
    /// to 2 GiB, which no queue in memory reaches anyway).
    private let maxBackpressureBytes: Int32
    var maxBackpressure: Int { Int(maxBackpressureBytes) }
    /// Past this, sends are dropped: twice `maxBackpressure` plus a read.
    /// Derived, not stored: only a send behind a queue needs it.
    var hardQueueLimit: Int { 2 &* maxBackpressure &+ context.readRing.capacity }
    package let role: Role
    @exclusivity(unchecked) package var pausedForBackpressure = false
    /// The application holds reading (`WebSocketConnection.pauseReading`):
    /// a drained queue does not resume it, only the application does.
    @exclusivity(unchecked) package private(set) var readingHeld = false
    @exclusivity(unchecked) var owesDrainEvent = false
    /// Writes are over: the handle is closing (or a write failed).
    @exclusivity(unchecked) package var writesClosed = false
    /// Publications are staged for this transport this turn
    /// (`PublicationStaging`): they go out before anything else it writes.
    @exclusivity(unchecked) var hasStaged = false
    /// TLS: every write is sealed first (`sealAndWrite`), and the queue holds
    /// ciphertext. A flag beside the others, so a plain transport pays a
    /// branch and no byte for it.
    @exclusivity(unchecked) var encrypts = false
    /// Payloads from this size on go to the socket by reference (writev of
    /// header and payload) instead of being copied into the cork.
    static let byReferenceThreshold = 16 * 1024

    package init(context: LoopContext, role: Role, maxBackpressure: Int) {
        contextRef = Unmanaged.passUnretained(context)
        self.role = role
        maxBackpressureBytes = Int32(clamping: maxBackpressure)
        lastWrite = context.loop.now
        super.init(loop: context.loop)
        slot = context.reserveSlot(for: self)
    }

    /// Bytes queued in user space, not yet taken by the kernel.
    package var queuedCount: Int { outbound.count }

    // MARK: Events for the connection (overridden by `ConnectionStream`)

    /// A write failed: the connection is lost.
    package func writeDidFail() {}
    /// The queue that made a send report `.backpressure` has drained.
    package func queueDidDrain() {}
    /// The wheel reached this transport's deadline.
    package func deadlineReached(now: UInt64) {}
    /// Reading stopped for backpressure (for the connection's debug log).
    package func didPauseForBackpressure() {}

    // MARK: Deadlines

    package final func schedule(at deadline: UInt64?) {
        if let deadline { context.wheel.schedule(slot, at: deadline) } else { context.wheel.cancel(slot) }
    }

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
        if outbound.isEmpty && payload.count < Transport.byReferenceThreshold {
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
    /// what the cork holds for this transport: the kernel usually takes it all,
    /// and only what it refuses is copied to the queue (masked on the way).
    final func sendMasked(_ opcode: Opcode, fin: Bool, rsv: UInt8, payload: UnsafeRawBufferPointer) -> SendStatus {
        if outbound.count > hardQueueLimit { return .dropped }
        let key = contextRef._withUnsafeGuaranteedRef { $0.maskKeys.next() }
        FrameWriter.withHeader(opcode: opcode, fin: fin, rsv: rsv, payloadLength: payload.count, maskKey: key) { header in
            if !outbound.isEmpty && !encrypts {
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
                // ciphertext), so only a plain transport stops here.
                if !outbound.isEmpty && !encrypts {
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
    /// copied behind it; otherwise what this transport has corked, the header
    /// and the payload (by reference) leave in one writev, and only what the
    /// kernel refuses is copied. Both views need only live for the call.
    package final func sendFramed(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> SendStatus {
        if writesClosed { return .dropped }
        if !outbound.isEmpty {
            if outbound.count > hardQueueLimit { return .dropped }
            if encrypts {
                sealAndWrite(header, payload, UnsafeRawBufferPointer(start: nil, count: 0))
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
    /// transport: referenced, written at the end of the turn with the others
    /// staged for it. A transport with a queue, or TLS, takes it at once
    /// through `sendFramed` instead.
    /// A transport whose queue holds `queueLimit` bytes or more gets it
    /// dropped.
    @inline(__always)
    package final func sendStaged(_ frame: StagedFrame, queueLimit: Int) -> SendStatus {
        if writesClosed || outbound.count >= queueLimit { return .dropped }
        return contextRef._withUnsafeGuaranteedRef { context in
            // Corked bytes of this transport's are older: they go first.
            if context.corkIsOwned(by: self) { context.flushCork() }
            if encrypts || !outbound.isEmpty {
                return sendFramed(header: context.bytes(of: frame), payload: UnsafeRawBufferPointer(start: nil, count: 0))
            }
            context.staging.add(slot: slot, offset: frame.offset, length: frame.length)
            hasStaged = true
            return .sent
        }
    }

    /// Writes what is staged for this transport, in one write when it fits
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
            do { written = try tryWrite(pieces: pieces + start, count: n) } catch {
                writesClosed = true
                writeDidFail()
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

    /// Writes up to three pieces with one try-write (`TCPStream.tryWrite`) and queues (copies) only
    /// what the kernel did not take. Only with nothing queued (or with TLS,
    /// whose sealed records go behind the queue).
    final func writeNow(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                        _ c: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        if encrypts {
            sealAndWrite(a, b, c)
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
            written = try tryWrite(a.count > 0 ? a : b, a.count > 0 ? b : c, a.count > 0 ? c : UnsafeRawBufferPointer(start: nil, count: 0))
        } catch {
            writesClosed = true
            writeDidFail()
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
            try write(bytes)
        } catch {
            outbound.completeWrite()
            writesClosed = true
            writeDidFail()
        }
    }

    package override func didCompleteWrite(_ error: UVError?) {
        outbound.completeWrite()
        if writesClosed { return }
        if error != nil {
            writesClosed = true
            writeDidFail()
            return
        }
        lastWrite = context.loop.now
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

    /// Past `maxBackpressure`, reading from this peer stops when the queue grew
    /// from replies to what we read: a peer that sends without reading can then
    /// not make an echo grow our memory past the limit plus a ring.
    @inline(__always)
    package final func checkBackpressure() -> SendStatus {
        // Nothing queued, the usual case after a send: no limit can be passed.
        if outbound.isEmpty { return .sent }
        return checkQueuedBackpressure()
    }

    final func checkQueuedBackpressure() -> SendStatus {
        if outbound.count > maxBackpressure {
            owesDrainEvent = true
            // Stopping reads bounds what a handler that replies to what it
            // reads (an echo) can queue for a peer that does not read, so it
            // applies when the bytes are such replies: sent inside a read
            // callback. Sends from elsewhere (a message sent from didOpen, a
            // timer's broadcast) are bounded by the hard cap instead; stopping
            // for them gains nothing and deadlocks two ends that each sent one
            // message larger than the limit, each waiting for the other to read.
            if !pausedForBackpressure && contextRef._withUnsafeGuaranteedRef({ $0.corkDepth > 0 && $0.corkHoldsReplies }) {
                pausedForBackpressure = true
                stopReading()
                didPauseForBackpressure()
            }
            return .backpressure
        }
        return .sent
    }

    /// True if bytes are queued, and `queueDidDrain` then follows once they
    /// are written (a streamed HTTP body waits for that before its next piece).
    package final func notifyWhenDrained() -> Bool {
        if outbound.isEmpty || writesClosed { return false }
        owesDrainEvent = true
        return true
    }

    /// Reading resumes (after a pause for backpressure, or the application's
    /// hold) for a connection that must see the peer's FIN or close frame.
    package final func resumeReading() {
        pausedForBackpressure = false
        endReadingHold()
        try? startReading()
    }

    /// The application stops reading from this peer until `releaseReading`.
    /// Bytes of the read being parsed are still delivered (at most one read
    /// more); the kernel's buffer then fills and TCP's window stops the peer.
    package final func holdReading() {
        if readingHeld || writesClosed { return }
        readingHeld = true
        context.readingHoldBegan()
        stopReading()
    }

    /// The application's hold is over (released, resumed or closed): the
    /// loop no longer runs for it alone.
    private func endReadingHold() {
        guard readingHeld else { return }
        readingHeld = false
        context.readingHoldEnded()
    }

    /// Ends the application's hold; reading restarts unless the queue still
    /// holds it paused for backpressure (then its drain restarts it).
    package final func releaseReading() {
        guard readingHeld else { return }
        endReadingHold()
        if !pausedForBackpressure && !writesClosed { try? startReading() }
    }

    /// Sends FIN after what is corked and queued (and TLS's close_notify);
    /// reading goes on.
    package final func finishWriting() {
        context.flushCork(ifOwner: self)
        // FIN goes after every byte of this turn, staged publications too.
        if hasStaged { writeStaged() }
        if encrypts { sendCloseNotify() }
        shutdown()
    }

    // MARK: TLS (overridden by `SecureConnectionStream`)

    /// Seals up to three plaintext pieces, in order, and writes the records.
    func sealAndWrite(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ c: UnsafeRawBufferPointer) {}
    /// Sends TLS's close_notify alert (RFC 8446 §6.1) before FIN.
    func sendCloseNotify() {}
    /// The loop's handshake cap held this transport back; it may go on now.
    func handshakeTurnCame() {}

    /// Closes the handle now; `didClose` follows in a later iteration.
    package final func closeNow() {
        endReadingHold()
        writesClosed = true
        context.forgetCork(self)
        context.wheel.cancel(slot)
        stopReading()
        close()
    }

    package override func didClose() {
        endReadingHold()
        outbound.deallocate()
        context.freeSlot(slot)
    }
}
