import UVKit
import WebSocketCore
import WebSocketRuntime
#if canImport(Glibc)
import Glibc
#endif

/// One record of a loop's inbox: what another thread (or another loop) asks
/// the loop to do. Plain bits, copied into the inbox beside its payload (a
/// message's bytes, a close reason); `object` is a retained reference the
/// receiving loop releases.
struct LoopCommand: BitwiseCopyable {
    enum Kind: UInt8 {
        /// Send the payload as one message to a connection.
        case send
        /// Start the closing handshake of a connection (payload: the reason).
        case close
        /// Write a `SharedMessage` (object) to every open connection.
        case broadcast
        /// Take a socket the accepting loop handed over (descriptor).
        case adopt
        /// Graceful shutdown, draining for `milliseconds`.
        case shutdown
        /// Report this loop's metrics to a `MetricsGathering` (object).
        case report
        /// Deliver a `SharedMessage` (object) to the subscribers of the topic
        /// named by the payload; `code` is its `PublicationOrigin`.
        case publish
        /// Loop 0: another loop's first (`code` 1) or last (0) subscriber of
        /// the topic named by the payload.
        case interest
    }

    var kind: Kind
    /// A `MessageType`'s raw value: a public enum of another module is not
    /// known to be plain bits.
    private var messageTypeBits: UInt8 = MessageType.binary.rawValue
    var code: UInt16 = 0
    var slot: Int32 = -1
    var serial: UInt32 = 0
    var descriptor: Int32 = -1
    var milliseconds: UInt64 = 0
    var object: UnsafeMutableRawPointer?

    init(_ kind: Kind) { self.kind = kind }

    var messageType: MessageType {
        get { MessageType(rawValue: messageTypeBits) ?? .binary }
        set { messageTypeBits = newValue.rawValue }
    }

    init(_ kind: Kind, to id: ConnectionID) {
        self.kind = kind
        slot = id.slot
        serial = id.serial
    }
}

extension LoopCommand {
    /// Lets go of what a record holds when no server is there to carry it
    /// out (released with records pending): a message's or a gathering's
    /// reference, a handed-over descriptor. A gathering gets empty figures,
    /// so that whoever waits for it is answered.
    static func discard(_ command: LoopCommand) {
        switch command.kind {
        case .broadcast, .publish:
            Unmanaged<SharedMessage>.fromOpaque(command.object!).release()
        case .report:
            let gathering = Unmanaged<MetricsGathering>.fromOpaque(command.object!).takeRetainedValue()
            gathering.deliver(WebSocketMetrics(), from: Int(command.slot))
        case .adopt:
            Glibc.close(command.descriptor)
        case .send, .close, .shutdown, .interest:
            break
        }
    }
}

extension WebSocketServer {
    /// Carries out one inbox record on the loop thread. Frames produced by a
    /// batch of records gather in the loop's cork (`inboxBatchEnded` flushes),
    /// so many sends to one peer leave in one write.
    func receive(_ command: LoopCommand, payload: UnsafeRawBufferPointer) {
        if !inInboxBatch {
            inInboxBatch = true
            endpoint.context.beginCork()
        }
        switch command.kind {
        case .send:
            // A whole message: never inside one the handler is sending in
            // fragments (RFC 6455 §5.4), which the peer would take for corrupt.
            _ = connection(slot: command.slot, serial: command.serial)?.sendWholeMessage(payload, type: command.messageType)
        case .close:
            connection(slot: command.slot, serial: command.serial)?
                .close(code: CloseCode(rawValue: command.code), reason: String(decoding: payload, as: UTF8.self))
        case .broadcast:
            let message = Unmanaged<SharedMessage>.fromOpaque(command.object!).takeRetainedValue()
            _ = broadcastHere(message.payload, type: message.type, header: message.header)
        case .adopt:
            adopt(descriptor: command.descriptor)
        case .shutdown:
            shutdown(drainTimeout: .milliseconds(Int64(command.milliseconds)))
        case .report:
            let gathering = Unmanaged<MetricsGathering>.fromOpaque(command.object!).takeRetainedValue()
            gathering.deliver(metrics, from: loopIndex)
        case .publish:
            let message = Unmanaged<SharedMessage>.fromOpaque(command.object!).takeRetainedValue()
            let topic = String(decoding: payload, as: UTF8.self)
            _ = publishHere(message.payload, type: message.type, header: message.header, topic: topic)
            // Made elsewhere in this process: loop 0 hands it to the backplane.
            if loopIndex == 0, command.code == PublicationOrigin.local.rawValue {
                group?.sendToBackplane(message, topic: topic)
            }
        case .interest:
            group?.countInterest(String(decoding: payload, as: UTF8.self), interested: command.code == 1)
        }
    }

    func inboxBatchEnded() {
        guard inInboxBatch else { return }
        inInboxBatch = false
        endpoint.context.endCork()
        endpoint.context.flushCork()
    }

    /// The connection `slot` and `serial` name, if it is still there.
    func connection(slot: Int32, serial: UInt32) -> WebSocketConnection<Handler>? {
        guard slot >= 0, Int(slot) < connections.capacity, serials[Int(slot)] == serial else { return nil }
        return connections[slot]
    }
}
