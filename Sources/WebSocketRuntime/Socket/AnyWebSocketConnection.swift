import CLibUV
import TLSKit
import UVKit
import WebSocketCore

/// One WebSocket connection, of any handler: the one object a socket is.
/// It holds libuv's TCP handle inside itself (no second allocation), takes
/// libuv's callbacks directly, owns the write funnel, the queue and its share
/// of the loop's cork, runs the protocol (`WebSocketStateMachine`) and, with
/// TLS, holds the record codec (`TLSCodec`). Not generic, so all of that is
/// compiled once, specialised, and called directly: a read goes libuv →
/// `readBuffer`/`didRead` → `machine.receive` → the handler, four hops.
///
/// Applications meet it as `WebSocketConnection<Handler>`, its subclass,
/// which adds only what depends on the handler's type: the typed `data` and
/// the calls into the handler (`deliver…`, the one vtable call per event).
///
/// Life: it holds itself from `init` until its handle's close callback
/// (`handleDidClose`), whoever else holds it, so libuv never keeps the
/// address of freed memory; the handle's memory is this object's, freed with
/// it after that callback. A server or client released while its connections
/// close leaves them nothing to reach through a freed owner. Loop thread
/// only; every public call checks it (`EventLoop.checkThread`).
public class AnyWebSocketConnection {
    // Fields in order of size: a class is laid out as declared, and there is
    // one of these per connection (docs/benchmarks.md, idle memory).

    /// libuv's handle. A stored property of a class has one address for the
    /// object's life (no observers, not computed, so no accessor moves it),
    /// which is what libuv needs from the handle until its close callback.
    /// Reached through `handle`, never copied.
    @exclusivity(unchecked) final var tcp = uv_tcp_t()
    /// The loop's context, not counted (the endpoint holds it). Lent with
    /// `_withUnsafeGuaranteedRef` on the per-message path: loading an
    /// `unowned(unsafe)` reference into a value retains it.
    final let contextRef: Unmanaged<LoopContext>
    /// The endpoint, held (released in `deinit`): it holds the loop context,
    /// whose buffers the last callbacks use.
    final let endpointRef: Unmanaged<EndpointCore>
    /// When the kernel last took bytes, in the loop's milliseconds.
    @exclusivity(unchecked) final var lastWrite: UInt64
    /// Bytes the socket did not take yet (one pointer while empty).
    @exclusivity(unchecked) final var outbound = OutboundQueue()
    /// TLS between the socket and the protocol, when the connection speaks it.
    @exclusivity(unchecked) final var tls: TLSCodec?
    /// The HTTP head, read into its own buffer (freed once it is handled).
    final var head = HeadBuffer()
    /// What the last read left unparsed (a partial frame header or control
    /// frame), borrowed from the loop's pool until the next read.
    @exclusivity(unchecked) final var leftover: RingPool.Ring?
    /// A client connection's handshake: its key and request.
    final package var clientHandshake: ClientHandshakeState?
    /// Joins chunks for `wholeMessage`; holds memory only while a message spans reads.
    final var assembler = MessageAssembler()
    /// The subprotocol agreed in the handshake.
    public final package(set) var subprotocol: String?
    /// The request path (and query) the WebSocket was opened on.
    public final package(set) var path: String?
    /// The protocol. Before the handshake completes its `lastRead` is when the
    /// TCP connection began (the handshake timeout counts from there). The
    /// byte-sized fields follow it, in the padding its odd size leaves.
    @exclusivity(unchecked) final var machine: WebSocketStateMachine

    final package let role: Role
    /// With permessage-deflate and no context of this end's: the window its
    /// messages are compressed with (0 otherwise), so a broadcast compresses
    /// once for every connection with the same window.
    final package internal(set) var sharedCompressionWindow: UInt8 = 0
    /// Until the first frame of a message sent through the extension is out,
    /// the opcode that frame carries.
    final var encodingFirstOpcode: Opcode?
    /// The message being sent goes through the extension.
    final var encodingMessage = false
    /// Reads are started and not stopped.
    @exclusivity(unchecked) final var isReading = false
    /// `close` was called on the handle; its callback may not have run yet.
    @exclusivity(unchecked) final var isClosing = false
    /// Reading stopped because the queue passed `maxBackpressure`.
    @exclusivity(unchecked) final package var pausedForBackpressure = false
    /// The application holds reading (`pauseReading`): a drained queue does
    /// not resume it, only the application does.
    @exclusivity(unchecked) final package internal(set) var readingHeld = false
    @exclusivity(unchecked) final var owesDrainEvent = false
    /// Writes are over: the handle is closing (or a write failed).
    @exclusivity(unchecked) final package var writesClosed = false
    /// Publications are staged for this connection this turn
    /// (`PublicationStaging`): they go out before anything else it writes.
    @exclusivity(unchecked) final var hasStaged = false
    /// HTTP keep-alive (a server's plain requests): a response is under way,
    /// so the next request's head waits in `head` until it ends.
    final var httpResponding = false
    /// Heads are being dispatched by `headBytesArrived`'s loop, which takes
    /// the next pipelined one itself when a response ends inside it.
    final var httpDispatching = false

    /// Its deadline's slot in the context's wheel (and its staging key).
    @exclusivity(unchecked) final package internal(set) var slot: Int32 = -1
    /// Its index in its server's connection table (-1: none).
    final package var tableSlot: Int32 = -1
    /// 32 bits, so that it packs beside the slots (larger limits are clamped
    /// to 2 GiB, which no queue in memory reaches anyway).
    final let maxBackpressureBytes: Int32
    /// Queued writes (`uv_write`) whose callbacks have not run yet.
    @exclusivity(unchecked) final var writesInFlight: Int32 = 0
    /// Responses finished on this connection with it kept open (saturating).
    final var httpExchanges: UInt16 = 0
    /// The connection was lost inside a call (a send the kernel refused,
    /// `abort()`): the handler hears this code from the close callback,
    /// never from inside that call, so no callback of the handler runs
    /// inside another.
    final var lossToReport: CloseCode?

    /// Payloads from this size on go to the socket by reference (writev of
    /// header and payload) instead of being copied into the cork.
    static let byReferenceThreshold = 16 * 1024

    /// - Parameters:
    ///   - tls: the TLS context to speak through, if any.
    ///   - serverName: a client's host name for SNI and certificate checks.
    init(endpoint: EndpointCore, tls: TLSContext?, serverName: String?) {
        let settings = endpoint.settings
        let context = endpoint.context
        contextRef = Unmanaged.passUnretained(context)
        endpointRef = Unmanaged.passRetained(endpoint)
        role = settings.role
        maxBackpressureBytes = Int32(clamping: settings.maxBackpressure)
        let now = context.loop.now
        lastWrite = now
        // CONNECTING (§4) until the opening handshake completes; the machine
        // made then (`openWebSocket`) starts open.
        machine = WebSocketStateMachine(role: settings.role, maxMessageSize: settings.maxMessageSize,
                                        keepAlive: settings.keepAlive, closeTimeout: settings.closeTimeout, now: now,
                                        connecting: true)
        uv_tcp_init(context.loop.raw, handle.raw)
        tcp.data = Unmanaged.passUnretained(self).toOpaque()
        slot = context.reserveSlot(for: self)
        if let tls { self.tls = TLSCodec(role: settings.role, context: tls, serverName: serverName, loop: context.tls) }
        // Held for the handle until its close callback, with a share of the
        // loop's context (its wheel and rings serve the last callbacks).
        _ = Unmanaged.passRetained(self)
        context.addUser()
    }

    deinit {
        endpointRef.release()
    }

    /// The handle inside this object, for libuv's calls.
    @inline(__always)
    final var handle: TCPHandle {
        TCPHandle(withUnsafeMutablePointer(to: &tcp) { $0 })
    }

    final var context: LoopContext { contextRef.takeUnretainedValue() }
    final var endpointCore: EndpointCore { endpointRef.takeUnretainedValue() }
    final var maxBackpressure: Int { Int(maxBackpressureBytes) }
    /// Past this, sends are dropped: twice `maxBackpressure` plus a read.
    /// Derived, not stored: only a send behind a queue needs it.
    final var hardQueueLimit: Int { 2 &* maxBackpressure &+ context.readRing.capacity }

    // MARK: Calls into the handler and the owner (overridden by `WebSocketConnection<Handler>`)
    //
    // The one place the handler's type matters: a class call each, into the
    // subclass that knows it. The base is never made on its own.

    func deliverOpen() {}
    func deliver(_ chunk: UnsafeRawBufferPointer, type: MessageType, isFinal: Bool) {}
    func deliverPing(_ payload: UnsafeRawBufferPointer) {}
    func deliverPong(_ payload: UnsafeRawBufferPointer) {}
    func deliverDrain() {}
    func deliverClose(code: CloseCode, reason: String) {}
    /// The HTTP phase ended, for the server or client to act on.
    func httpPhaseEnded(_ outcome: HTTPPhaseOutcome) { abortHTTP() }
    /// The TCP connect of a client connection ended (nil: connected).
    func connectFinished(_ error: UVError?) {}
    /// A streamed HTTP response may go on: its queue is empty.
    func httpDrained() {}
    /// The handle has closed: the owner forgets this connection.
    func ownerForgets() {}
}

/// A client connection's opening handshake in progress. A class, so that a
/// server connection pays one reference for it, not two strings.
package final class ClientHandshakeState {
    package var key: String
    package var request: String
    package init(key: String, request: String) {
        self.key = key
        self.request = request
    }
}

@available(*, unavailable)
extension AnyWebSocketConnection: Sendable {}
