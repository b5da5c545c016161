import WebSocketCore

/// The application's side of a WebSocket connection, in either role: the same
/// handler serves a server's connections and a client's. Every method runs on
/// the loop thread, one call at a time, so a handler needs no locks.
///
/// Servers and clients are generic over the handler, so these calls are direct
/// (and specialised), not dynamic dispatch through an existential.
///
/// The handler's type (not its instances) may cross threads
/// (`SendableMetatype`): a group names it on every loop's thread.
public protocol WebSocketHandler: AnyObject, SendableMetatype {
    /// What the application keeps per connection (`connection.data`), typed,
    /// stored in the connection itself. `Void` when the handler keeps nothing.
    associatedtype ConnectionData = Void

    /// The handshake completed; the connection can send.
    func didOpen(_ connection: WebSocketConnection<Self>)

    /// A piece of a message. `chunk` points into the receive ring and is valid
    /// only during this call: copy what must outlive it. `isFinal` marks the last
    /// chunk of a message (ASP.NET's `EndOfMessage`). Text chunks are validated
    /// UTF-8 so far but may end inside a code point.
    func didReceive(_ connection: WebSocketConnection<Self>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool)

    /// A ping arrived; the protocol has already answered it with a pong
    /// (RFC 6455 §5.5.2). For applications that count or log pings.
    func didReceivePing(_ connection: WebSocketConnection<Self>, payload: UnsafeRawBufferPointer)

    /// A pong arrived (the round-trip time is on the connection).
    func didReceivePong(_ connection: WebSocketConnection<Self>, payload: UnsafeRawBufferPointer)

    /// The queue that made `send` report `.backpressure` has drained.
    func didDrain(_ connection: WebSocketConnection<Self>)

    /// The connection is over. `code` is the peer's close code, the code this
    /// end failed the connection with, or 1006 when it ended without a close
    /// frame. Nothing can be sent any more.
    func didClose(_ connection: WebSocketConnection<Self>, code: CloseCode, reason: String)
}

extension WebSocketHandler {
    /// Does nothing unless the handler implements it (so do the four below).
    public func didOpen(_ connection: WebSocketConnection<Self>) {}
    /// Does nothing: the state machine has answered the ping already.
    public func didReceivePing(_ connection: WebSocketConnection<Self>, payload: UnsafeRawBufferPointer) {}
    /// Does nothing.
    public func didReceivePong(_ connection: WebSocketConnection<Self>, payload: UnsafeRawBufferPointer) {}
    /// Does nothing.
    public func didDrain(_ connection: WebSocketConnection<Self>) {}
    /// Does nothing.
    public func didClose(_ connection: WebSocketConnection<Self>, code: CloseCode, reason: String) {}
}

/// What became of a `send`.
public enum SendStatus: Sendable, Equatable {
    /// Written to the socket, or corked to be written when the callback returns.
    case sent
    /// Queued in user space because the peer reads slower than we send; the
    /// queue is past `maxBackpressure` (and, when the bytes were replies to
    /// that peer's messages, reading from it has stopped) until `didDrain`.
    /// The data will still go out.
    case backpressure
    /// Not sent: the connection is closing, or the queue is past its hard cap
    /// (twice `maxBackpressure` plus the receive buffer).
    case dropped
}
