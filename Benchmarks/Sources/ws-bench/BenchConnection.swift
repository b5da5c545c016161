import Foundation
import UVKit
import WebSocketClient
#if canImport(Glibc)
import Glibc
#endif

/// One load-generating connection's bookkeeping: what it sent and when, and
/// what came back. The bytes travel over a `WebSocketConnection` of the public
/// client (which frames, masks, answers pings and closes) or, in raw mode, over
/// a plain TCP stream for the framing-free ceiling.
final class BenchConnection {
    enum State { case connecting, running, closed }

    /// The Bench, not counted (it outlives every connection), and lent without
    /// a retain on the per-message path.
    let benchRef: Unmanaged<Bench>
    var bench: Bench { benchRef.takeUnretainedValue() }
    // Copies of the run's constants, read per message without going to Bench.
    let pattern: PayloadPattern
    let size: Int
    let messageType: MessageType
    let closedLoop: Bool
    /// Fan-out: this connection only receives (another one publishes).
    let receivesOnly: Bool
    /// An idle run's connection: one echo, then quiet.
    let idleAfterOne: Bool
    let id: Int
    /// The request scenario: any reply answers the oldest request, unchecked.
    let request: Bool
    /// The pubsub scenario: deliveries are counted and timed by the time they carry.
    let pubsub: Bool
    /// pubsub: the message being received, when it spans chunks.
    var pending: [UInt8] = []
    /// pubsub: deliveries that reached this connection.
    var deliveries: UInt64 = 0
    var state = State.connecting
    /// The WebSocket, once open (held by the client too).
    var socket: WebSocketConnection<BenchHandler>?
    /// Raw mode's stream.
    var rawStream: RawStream?

    var sentSequence: UInt64 = 0
    var receivedSequence: UInt64 = 0
    /// Bytes of the current message received so far (the stream offset in raw mode).
    var receivedOffset = 0
    /// Send times (ns) of the messages in flight, indexed by sequence modulo capacity.
    let sendTimes: UnsafeMutablePointer<UInt64>
    let sendTimesCapacity: Int
    var pingsAnswered = 0

    init(bench: Bench, id: Int, inFlightCapacity: Int) {
        benchRef = Unmanaged.passUnretained(bench)
        pattern = bench.pattern
        size = bench.size
        messageType = bench.text ? .text : .binary
        closedLoop = bench.rate == nil
        receivesOnly = bench.config.publish && (id != 0 || bench.config.receiveOnly)
        idleAfterOne = bench.config.idle && bench.config.idleMessage
        self.id = id
        request = bench.config.scenario == .request
        pubsub = bench.config.scenario == .pubsub
        sendTimesCapacity = inFlightCapacity
        sendTimes = .allocate(capacity: inFlightCapacity)
    }

    deinit { sendTimes.deallocate() }

    var outstanding: Int { Int(sentSequence - receivedSequence) }

    /// A piece of an echoed message: checked against what was sent, byte for byte.
    @inline(__always)
    func received(_ chunk: UnsafeRawBufferPointer, isFinal: Bool) {
        if pubsub {
            if isFinal && pending.isEmpty {
                delivered(chunk)
            } else {
                pending.append(contentsOf: chunk)
                if isFinal {
                    pending.withUnsafeBytes { delivered($0) }
                    pending.removeAll(keepingCapacity: true)
                }
            }
            return
        }
        if request {
            // A reply with no request left (a server that also pushes) is not timed.
            if isFinal && receivedSequence < sentSequence { messageCompleted() }
            return
        }
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
    }

    /// pubsub: one whole message reached this connection.
    func delivered(_ message: UnsafeRawBufferPointer) {
        guard let sentAt = PubSubMessage.sentAt(message) else { return }
        deliveries += 1
        let now = Bench.nanoseconds()
        bench.recordEcho(latencyNanoseconds: now > sentAt ? now - sentAt : 0)
    }

    func messageCompleted() {
        let now = Bench.nanoseconds()
        let sent = sendTimes[Int(receivedSequence % UInt64(sendTimesCapacity))]
        let receivesOnly = receivesOnly
        let stopping = benchRef._withUnsafeGuaranteedRef { bench in
            bench.recordEcho(latencyNanoseconds: receivesOnly ? nil : now &- sent)
            return bench.stopping
        }
        receivedSequence += 1
        receivedOffset = 0
        if idleAfterOne {
            if receivedSequence == 1 { bench.connectionReady(self) }
            return
        }
        // A retired connection (a stage wanted fewer) still counts the echoes
        // on their way, and sends no more.
        if closedLoop && !receivesOnly && !stopping && state == .running { sendMessage(at: now) }
    }

    /// Sends the next message, stamped with `time` (the intended send time in
    /// fixed-rate mode, so that stalls count against latency).
    func sendMessage(at time: UInt64) {
        guard outstanding < sendTimesCapacity else {
            benchRef._withUnsafeGuaranteedRef { $0.overloaded += 1 }
            return
        }
        sendTimes[Int(sentSequence % UInt64(sendTimesCapacity))] = time
        if request, let template = bench.config.template {
            sentSequence += 1
            var text = template.replacingOccurrences(of: "{{counter}}", with: String(bench.nextRequestNumber()))
            text.withUTF8 { _ = socket?.send(UnsafeRawBufferPointer($0), type: .text) }
            return
        }
        let payload = pattern.message(sentSequence)
        sentSequence += 1
        if let rawStream {
            rawStream.enqueue(payload)
        } else {
            socket?.send(payload, type: messageType)
        }
    }

    /// Raw mode writes what it queued; the client writes its own.
    func flush() { rawStream?.flush() }

    /// A staged run wants fewer connections: this one closes with 1000 (§7.1.2,
    /// the closing handshake), which the run does not count as an error.
    func retire() {
        if state == .closed { return }
        state = .closed
        socket?.close(code: .normalClosure)
        socket = nil
    }

    /// Ends the connection without a closing handshake (the run is over or failed).
    func shut() {
        if state == .closed { return }
        state = .closed
        socket?.abort()
        socket = nil
        rawStream?.shut()
    }
}
