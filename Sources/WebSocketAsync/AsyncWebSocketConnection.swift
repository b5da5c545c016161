import UVKit
import WebSocketCore
import WebSocketRuntime

/// A WebSocket connection for structured concurrency: its inbound messages
/// as an `AsyncSequence` (`messages`), and `send` and `close` callable from
/// any task. The same type in both roles: a server's async handler gets one
/// per connection, and `AsyncWebSocketClient.connect` returns one.
///
/// Underneath, the connection lives on its loop like any other
/// (`WebSocketConnection`); this object is where the loop thread and the
/// tasks meet. Both directions cross in batches, never one hop per message:
///
/// - **In.** The loop appends each whole message to a buffer under a lock and
///   wakes the consumer only if it waits; the consumer takes everything
///   buffered at once. Past `inboundLimit` bytes buffered, the loop stops
///   reading from the peer (TCP then stops the peer); the consumer's next
///   take resumes it. Nothing is dropped and nothing grows without bound.
/// - **Out.** A send appends its whole message to a list under the lock; the
///   send that finds the list empty posts one closure to the loop, which
///   writes the whole list through the loop's cork, in one system call. A
///   send suspends while the bytes not yet taken by the kernel exceed
///   `outboundLimit`, and resumes when they drain. Each send's message is
///   appended whole, in one step, so concurrent senders never interleave
///   pieces, and each task's sends keep their order.
///
/// `Sendable` unchecked: every field tasks touch is in `state`, under its
/// lock; `connection` and `owner` are read and written on the loop thread
/// only (set at the open, let go at the close).
public final class AsyncWebSocketConnection: @unchecked Sendable {
    typealias Connection = WebSocketConnection<AsyncWebSocketHandler>

    /// The request path (and query) the WebSocket was opened on.
    public let path: String?
    /// The subprotocol agreed in the handshake, if any.
    public let subprotocol: String?
    /// Bytes of received messages buffered for the consumer past which the
    /// loop stops reading from the peer.
    public let inboundLimit: Int
    /// Bytes sent and not yet taken by the kernel past which `send` suspends.
    public let outboundLimit: Int

    let loop: EventLoop
    let state = Lock(State())
    /// Loop thread only: the connection, until its close.
    var connection: Connection?
    /// Loop thread only: what must live as long as the connection (a
    /// client's `WebSocketClient`), until its close.
    var owner: AnyObject?
    /// Loop thread only: the list a flush swaps in, so that neither list
    /// is reallocated once grown to the traffic.
    var spareOutgoing: [Outgoing] = []

    init(connection: Connection, inboundLimit: Int, outboundLimit: Int) {
        path = connection.path
        subprotocol = connection.subprotocol
        self.inboundLimit = inboundLimit
        self.outboundLimit = outboundLimit
        loop = connection.eventLoop
        self.connection = connection
    }

    /// How the connection ended (nil while it is open or closing).
    public var closeCode: CloseCode? { state.withLock { $0.closeCode } }
    /// The reason that came with `closeCode`.
    public var closeReason: String { state.withLock { $0.closeReason } }
    /// How the connection ended, nil while it is open or closing: its code,
    /// and whether this end asked for the close (`close`, or its loop's end).
    var end: (code: CloseCode?, closedHere: Bool)? {
        state.withLock { $0.ended ? ($0.closeCode, $0.closing) : nil }
    }
    /// Bytes of received messages waiting for the consumer.
    public var bufferedInbound: Int { state.withLock { $0.inboxBytes } }

    /// The inbound messages, in order. It ends (returns nil) when the
    /// connection closes, after every message that arrived before the close.
    /// One consumer at a time: a second task waiting on it at once gets
    /// `AsyncWebSocketError.concurrentIteration`. A cancelled consumer's
    /// `next()` throws `CancellationError`.
    public var messages: Messages { Messages(connection: self) }

    /// What crosses from tasks to the loop, in order.
    enum Outgoing {
        case message(WebSocketMessage)
        case closeRequest(CloseCode, String)
    }

    /// Everything tasks and the loop share, under `state`'s lock.
    struct State {
        // In: filled by the loop, emptied by the consumer in one take.
        var inbox: [WebSocketMessage] = []
        var inboxBytes = 0
        /// The loop stopped reading because `inbox` passed the limit; the
        /// consumer's next take asks it to resume.
        var readingPaused = false
        /// The consumer, suspended until a message or the end arrives.
        var reader: CheckedContinuation<Void, Error>?

        // Out: filled by senders, emptied by the loop in one take.
        var outgoing: [Outgoing] = []
        /// Bytes in `outgoing` (messages only).
        var outgoingBytes = 0
        /// Bytes the connection had queued (not yet taken by the kernel)
        /// after the loop's last flush or drain.
        var queuedAtLoop = 0
        /// A flush is posted to the loop and has not taken `outgoing` yet.
        var flushPosted = false
        /// Senders suspended until the bytes outstanding fall to the limit.
        var writers: [(id: UInt64, continuation: CheckedContinuation<Void, Error>)] = []
        var nextWriterID: UInt64 = 0
        /// `close` calls waiting for the end.
        var closers: [CheckedContinuation<Void, Error>] = []
        /// A close was asked for: later sends fail.
        var closing = false

        // The end.
        var ended = false
        var closeCode: CloseCode?
        var closeReason = ""
        /// The server's handler task, cancelled at the end.
        var task: Task<Void, Never>?

        var outstanding: Int { outgoingBytes &+ queuedAtLoop }
    }
}
