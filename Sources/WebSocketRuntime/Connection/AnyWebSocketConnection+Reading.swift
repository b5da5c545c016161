import UVKit
import WebSocketCore

/// The read path: bytes land in the loop's ring (or the head buffer), the
/// state machine turns them into actions, and this file carries them out.
/// With TLS these are the plaintext pieces the codec decrypts.
///
/// The endpoint and the context are lent through their `Unmanaged`
/// references: loading them as values would retain and release each per
/// message.
extension AnyWebSocketConnection {
    final func plainReadBuffer() -> UnsafeMutableRawBufferPointer {
        if machine.readsFrames {
            // Reads land in the loop's ring, behind what this connection's last
            // read left unparsed. The ring is empty between callbacks; reset it
            // anyway, in case a read ended in an error after the last allocation.
            return contextRef._withUnsafeGuaranteedRef { context in
                context.readRing.reset()
                if let l = leftover {
                    l.pointee.move(to: &context.readRing)
                    context.leftoverPool.give(l)
                    leftover = nil
                }
                return context.readRing.writableRegion
            }
        }
        if machine.isConnecting { return headReadBuffer() }
        // Draining: frames are over, reads only wait for the peer's FIN.
        return contextRef._withUnsafeGuaranteedRef { $0.scratch }
    }

    final func plainDidRead(_ count: Int) {
        if machine.readsFrames {
            let now = contextRef._withUnsafeGuaranteedRef { context in
                context.readRing.commitWrite(count)
                return context.loop.now
            }
            if count > 0 { machine.lastRead = now }
            endpointRef._withUnsafeGuaranteedRef { $0.metrics.bytesReceived &+= count }
            readFrames(now: now)
            stashLeftover()
        } else if machine.isConnecting && count > 0 {
            let scanned = head.count
            head.commit(count)
            headBytesArrived(scannedBefore: scanned)
        }
    }

    /// Carries out what the state machine makes of the ring's bytes. Replies
    /// made meanwhile are corked; the loop's check handle writes them once the
    /// poll phase of this iteration ends.
    func readFrames(now: UInt64) {
        contextRef._withUnsafeGuaranteedRef { context in
            context.beginCork()
            readFrames(context, now: now)
            context.endCork()
        }
    }

    private func readFrames(_ context: LoopContext, now: UInt64) {
        while machine.readsFrames {
            switch machine.receive(&context.readRing, now: now) {
            case .needMoreData:
                return
            case .message(let chunk, let type, let isFinal):
                if isFinal { endpointRef._withUnsafeGuaranteedRef { $0.metrics.messagesReceived &+= 1 } }
                deliver(chunk, type: type, isFinal: isFinal)
            case .sendPong(let payload):
                _ = sendFrame(.pong, fin: true, payload: payload)
                deliverPing(payload)
            case .pong(let payload, let measured):
                pongArrived(payload, measured: measured)
            case .closed(let code, let reason, let sendClose):
                framesEnded(code: code, reason: reason, sendClose: sendClose)
                return
            }
        }
    }

    /// Empties the loop's ring after a read: what the parser left (a partial
    /// header or control frame; payloads stream out as they arrive) goes to a
    /// small ring of this connection's until its next read.
    func stashLeftover() {
        contextRef._withUnsafeGuaranteedRef { context in
            if !context.readRing.isEmpty && machine.readsFrames {
                let count = context.readRing.count
                // At most 131 bytes by the parser's rules; a pooled ring holds 256.
                let l = context.leftoverPool.take(toHold: count)
                context.readRing.move(to: &l.pointee)
                leftover = l
            }
            context.readRing.reset()
        }
    }

    /// A pong: its round-trip time for the counters when it answered a ping
    /// of ours, then the handler. Out of line, so that the message path's
    /// loop keeps its registers (callgrind: 5 instructions per message inline).
    @inline(never)
    private func pongArrived(_ payload: UnsafeRawBufferPointer, measured: Bool) {
        if measured, let milliseconds = machine.roundTripTime {
            endpointCore.metrics.pongsReceived &+= 1
            endpointCore.metrics.roundTripMillisecondsTotal &+= Int(clamping: milliseconds)
            endpointCore.roundTrips.record(milliseconds)
        }
        deliverPong(payload)
    }
}
