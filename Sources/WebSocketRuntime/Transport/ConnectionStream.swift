import UVKit
import WebSocketCore

/// The TCP stream a connection has: the transport, with its events handed to
/// its one connection (`SecureConnectionStream` adds TLS between the two).
/// The connection owns it (strongly); it points back without a count, since
/// the connection outlives it.
///
/// UVKit reaches these overrides through the vtable of a generic class, whose
/// entries are the unspecialized code: there every use of an `unowned(unsafe)`
/// reference would be retained and released, so the connection is lent with
/// `_withUnsafeGuaranteedRef`.
class ConnectionStream<Handler: WebSocketHandler>: Transport {
    var connectionRef: Unmanaged<WebSocketConnection<Handler>>?

    override func readBuffer() -> UnsafeMutableRawBufferPointer {
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.readBuffer() }
    }

    override func didRead(_ count: Int) {
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.didRead(count) }
    }

    override func didRunOutOfReadBuffer() {
        // Only the HTTP head can fill its buffer, and the head parser reports
        // 431 before that; a full ring means a peer we stopped reading for anyway.
        stopReading()
    }

    override func didReachEnd(_ error: UVError?) {
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.connectionLost() }
    }

    override func didConnect(_ error: UVError?) {
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.didConnect(error) }
    }

    override func didShutdown(_ error: UVError?) {
        if error != nil { closeNow() }
    }

    override func writeDidFail() {
        // Often inside a send, so inside a handler's callback: the loss is
        // reported from the close callback (`loseFromCall`).
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.loseFromCall() }
    }

    override func queueDidDrain() {
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.queueDidDrain() }
    }

    override func didPauseForBackpressure() {
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.readingPausedForBackpressure() }
    }

    override func deadlineReached(now: UInt64) {
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.deadlineReached(now: now) }
    }

    override func didClose() {
        super.didClose()
        // Loaded strongly: the connection lets go of its own hold in
        // `streamDidClose`, and must outlive that call.
        guard let connection = connectionRef?.takeUnretainedValue() else { return }
        connectionRef = nil
        connection.streamDidClose()
    }
}
