import UVKit
import WebSocketCore
#if canImport(Glibc)
import Glibc
#endif

/// One load-generating connection: a WebSocket client (masked frames out) or,
/// in raw mode, a plain TCP stream for the framing-free ceiling.
final class BenchConnection: TCPStream {
    enum State { case connecting, handshaking, running, closed }

    /// The Bench, not counted (it outlives every connection), and lent without
    /// a retain on the per-message path.
    let benchRef: Unmanaged<Bench>
    var bench: Bench { benchRef.takeUnretainedValue() }
    // Copies of the run's constants, read per message without going to Bench.
    let pattern: PayloadPattern
    let size: Int
    let raw: Bool
    let messageOpcode: Opcode
    let closedLoop: Bool
    /// The clock, read once per read callback rather than once per message.
    var now: UInt64 = 0
    let id: Int
    var state = State.connecting
    var ring: ByteRing
    var parser = FrameParser(role: .client)
    var queue: SendQueue
    var writing = false
    var key = ""

    var sentSequence: UInt64 = 0
    var receivedSequence: UInt64 = 0
    /// Bytes of the current message received so far (the stream offset in raw mode).
    var receivedOffset = 0
    /// Send times (ns) of the messages in flight, indexed by sequence modulo capacity.
    var sendTimes: UnsafeMutablePointer<UInt64>
    let sendTimesCapacity: Int
    var pingsAnswered = 0

    init(bench: Bench, id: Int, ringCapacity: Int, inFlightCapacity: Int) {
        benchRef = Unmanaged.passUnretained(bench)
        pattern = bench.pattern
        size = bench.size
        raw = bench.raw
        messageOpcode = bench.text ? .text : .binary
        closedLoop = bench.rate == nil
        self.id = id
        ring = ByteRing(capacity: ringCapacity)
        queue = SendQueue(capacity: max(4096, min(bench.frameSize * 4, 1 << 20)))
        sendTimesCapacity = inFlightCapacity
        sendTimes = .allocate(capacity: inFlightCapacity)
        super.init(loop: bench.loop)
    }

    var outstanding: Int { Int(sentSequence - receivedSequence) }

    override func didConnect(_ error: UVError?) {
        if let error {
            bench.connectionFailed(self, "connect: \(error)")
            return
        }
        setNoDelay(true)
        do { try startReading() } catch { bench.connectionFailed(self, "read: \(error)"); return }
        if raw {
            state = .running
            bench.connectionReady(self)
            return
        }
        state = .handshaking
        key = AcceptKey.makeKey()
        let request = ClientHandshake.request(host: bench.hostHeader, path: bench.path, key: key)
        let bytes = Array(request.utf8)
        bytes.withUnsafeBytes { raw in
            let p = queue.reserve(raw.count)
            p.copyMemory(from: raw.baseAddress!, byteCount: raw.count)
            queue.pendingCount += raw.count
        }
        flush()
    }

    override func readBuffer() -> UnsafeMutableRawBufferPointer { ring.writableRegion }

    override func didRead(_ count: Int) {
        guard count > 0 else { return }
        now = Bench.nanoseconds()
        ring.commitWrite(count)
        switch state {
        case .handshaking: readHandshake()
        case .running: raw ? readRaw() : readFrames()
        default: break
        }
        flush()
    }

    override func didReachEnd(_ error: UVError?) {
        if state != .closed && !bench.stopping {
            bench.connectionFailed(self, error.map { "read: \($0)" } ?? "server closed the connection")
        }
    }

    func readHandshake() {
        let (p, n) = ring.contiguousReadable(from: 0)
        switch HTTPHeadParser.parse(UnsafeRawBufferPointer(start: p, count: n)) {
        case .incomplete:
            return
        case .failure(let e):
            bench.connectionFailed(self, "bad response head: \(e)")
        case .complete(let head, let length):
            if case .failure(let e) = ClientHandshake.validate(head, key: key) {
                bench.connectionFailed(self, "handshake: \(e)")
                return
            }
            ring.consume(length)
            state = .running
            bench.connectionReady(self)
            readFrames()
        }
    }

    func readFrames() {
        while state == .running {
            switch parser.next(&ring) {
            case .needMoreData:
                return
            case .data(let chunk, _, let isFinal):
                if !pattern.matches(chunk, sequence: receivedSequence, at: receivedOffset) {
                    bench.mismatch(self, "payload of message \(receivedSequence) differs at offset \(receivedOffset)")
                    return
                }
                receivedOffset += chunk.count
                if isFinal {
                    if receivedOffset != size {
                        bench.mismatch(self, "message \(receivedSequence) has \(receivedOffset) bytes, sent \(size)")
                        return
                    }
                    messageCompleted()
                }
            case .ping(let payload):
                pingsAnswered += 1
                enqueueFrame(.pong, payload)
            case .pong:
                break
            case .close(let code, _):
                if !bench.stopping { bench.connectionFailed(self, "server sent close \(code)") }
                return
            case .failure(let code):
                bench.connectionFailed(self, "protocol error \(code)")
                return
            }
        }
    }

    /// Raw mode: the echo is a byte stream; every `size` bytes is one message.
    func readRaw() {
        while state == .running {
            let (p, n) = ring.contiguousReadable(from: 0)
            if n == 0 { return }
            let take = min(n, size - receivedOffset)
            if !pattern.matches(UnsafeRawBufferPointer(start: p, count: take), sequence: receivedSequence, at: receivedOffset) {
                bench.mismatch(self, "raw echo of message \(receivedSequence) differs")
                return
            }
            ring.consume(take)
            receivedOffset += take
            if receivedOffset == size { messageCompleted() }
        }
    }

    func messageCompleted() {
        let sent = sendTimes[Int(receivedSequence % UInt64(sendTimesCapacity))]
        let stopping = benchRef._withUnsafeGuaranteedRef { bench in
            bench.recordEcho(latencyNanoseconds: now &- sent)
            return bench.stopping
        }
        receivedSequence += 1
        receivedOffset = 0
        if closedLoop && !stopping { sendMessage(at: now) }
    }

    /// Queues the next message, stamped with `time` (the intended send time in
    /// fixed-rate mode, so that stalls count against latency).
    func sendMessage(at time: UInt64) {
        guard outstanding < sendTimesCapacity else {
            benchRef._withUnsafeGuaranteedRef { $0.overloaded += 1 }
            return
        }
        sendTimes[Int(sentSequence % UInt64(sendTimesCapacity))] = time
        let payload = pattern.message(sentSequence)
        sentSequence += 1
        if raw {
            let p = queue.reserve(payload.count)
            p.copyMemory(from: payload.baseAddress!, byteCount: payload.count)
            queue.pendingCount += payload.count
        } else {
            enqueueFrame(messageOpcode, payload)
        }
    }

    func enqueueFrame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        let p = queue.reserve(payload.count + 14)
        queue.pendingCount += FrameWriter.writeFrame(into: p, opcode: opcode, fin: true, payload: payload,
                                                     maskKey: benchRef._withUnsafeGuaranteedRef { $0.keys.next() })
    }

    /// Writes what is queued: at once if the kernel takes it, else with uv_write.
    func flush() {
        guard !writing, queue.pendingCount > 0, state != .closed else { return }
        let bytes = queue.swapForWrite()
        do {
            let n = try tryWrite(bytes)
            if n < bytes.count {
                writing = true
                try write(UnsafeRawBufferPointer(rebasing: bytes[n...]))
            }
        } catch {
            bench.connectionFailed(self, "write: \(error)")
        }
    }

    override func didCompleteWrite(_ error: UVError?) {
        writing = false
        if let error, state != .closed {
            bench.connectionFailed(self, "write: \(error)")
            return
        }
        flush()
    }

    func shut() {
        if state == .closed { return }
        state = .closed
        stopReading()
        close()
    }

    override func didClose() {
        ring.deallocate()
        queue.deallocate()
        sendTimes.deallocate()
        bench.connectionClosed(self)
    }
}
