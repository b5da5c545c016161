import WebSocketCore
import WebSocketRuntime

/// The async face's handler: give it to a server or a group as any other
/// handler, with an async body per route. Each connection gets its
/// `AsyncWebSocketConnection` and its own task running the body; the task is
/// cancelled when the connection ends, and the connection is closed (1000,
/// or 1011 if the body threw) when the body returns first.
///
/// ```swift
/// let handler = try AsyncWebSocketHandler { connection in
///     for try await message in connection.messages {
///         try await connection.send(message)
///     }
/// }
/// let group = try WebSocketServerGroup(loops: 2, sharedHandler: handler)
/// group.route(webSocket: "/ws")
/// ```
///
/// It holds only what it was made with, so one instance serves every loop
/// of a group (`Sendable`); the state of each connection is the connection's.
public final class AsyncWebSocketHandler: WebSocketHandler, Sendable {
    /// Each connection's async side, kept in the connection.
    public typealias ConnectionData = AsyncWebSocketConnection
    /// The application's code for one connection, run in a task of its own.
    public typealias Body = @Sendable (AsyncWebSocketConnection) async throws -> Void

    /// The bodies by path (without the query); nil for a client's handler,
    /// whose connections go to whoever connected them.
    let routes: [String: Body]?
    /// The body for every path not in `routes`.
    let fallback: Body?
    /// Buffered inbound bytes past which reading stops (per connection).
    public let inboundLimit: Int
    /// Bytes not yet taken by the kernel past which `send` waits (per connection).
    public let outboundLimit: Int

    /// One body for every WebSocket route of the server.
    ///
    /// - Parameters:
    ///   - inboundLimit: bytes of received messages buffered for a slow
    ///     consumer past which the server stops reading from that peer
    ///     (1 MiB unless set; positive).
    ///   - outboundLimit: bytes sent and not yet taken by the kernel past
    ///     which `send` suspends (1 MiB unless set; positive).
    ///   - body: run for each connection, in a task of its own.
    public convenience init(inboundLimit: Int = 1 << 20, outboundLimit: Int = 1 << 20,
                            _ body: @escaping Body) throws(AsyncWebSocketError) {
        try self.init(routes: [:], fallback: body, inboundLimit: inboundLimit, outboundLimit: outboundLimit)
    }

    /// A body per path (`"/chat"`; the query is not part of the match); a
    /// WebSocket accepted on a path with no body is closed with 1011.
    ///
    /// - Parameters:
    ///   - routes: the bodies by path.
    ///   - inboundLimit: as in `init(inboundLimit:outboundLimit:_:)`.
    ///   - outboundLimit: as in `init(inboundLimit:outboundLimit:_:)`.
    public convenience init(routes: [String: Body], inboundLimit: Int = 1 << 20,
                            outboundLimit: Int = 1 << 20) throws(AsyncWebSocketError) {
        try self.init(routes: routes, fallback: nil, inboundLimit: inboundLimit, outboundLimit: outboundLimit)
    }

    init(routes: [String: Body]?, fallback: Body?, inboundLimit: Int, outboundLimit: Int) throws(AsyncWebSocketError) {
        guard inboundLimit > 0 else { throw .invalidOption("inboundLimit must be positive, got \(inboundLimit)") }
        guard outboundLimit > 0 else { throw .invalidOption("outboundLimit must be positive, got \(outboundLimit)") }
        self.routes = routes
        self.fallback = fallback
        self.inboundLimit = inboundLimit
        self.outboundLimit = outboundLimit
    }

    /// Makes the connection's async side and, on a server, starts its task.
    public func didOpen(_ connection: WebSocketConnection<AsyncWebSocketHandler>) {
        let async = AsyncWebSocketConnection(connection: connection, inboundLimit: inboundLimit,
                                             outboundLimit: outboundLimit)
        connection.data = async
        guard let routes else { return }
        let route = connection.path.map { String($0.prefix { $0 != "?" }) } ?? ""
        guard let body = routes[route] ?? fallback else {
            connection.close(code: .internalError, reason: "no handler for \(route)")
            return
        }
        let task = Task {
            var failed = false
            do { try await body(async) } catch { failed = !(error is CancellationError) }
            // Returned while the connection is open: the conversation is over.
            try? await async.close(code: failed ? .internalError : .normalClosure,
                                   reason: failed ? "handler failed" : "")
        }
        async.state.withLock { $0.task = task }
    }

    /// Whole messages go to the connection's buffer (the assembler joins
    /// fragments; the protocol bounds them by `maxMessageSize`).
    public func didReceive(_ connection: WebSocketConnection<AsyncWebSocketHandler>, chunk: UnsafeRawBufferPointer,
                           type: MessageType, isFinal: Bool) {
        guard let async = connection.data, let whole = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        async.deliver(type == .text ? .text(String(decoding: whole, as: UTF8.self)) : .binary(Array(whole)))
    }

    /// The queue drained: senders waiting for room go on.
    public func didDrain(_ connection: WebSocketConnection<AsyncWebSocketHandler>) {
        connection.data?.queueChanged()
    }

    /// The end: the consumer's sequence finishes, waiters go on, the task is cancelled.
    public func didClose(_ connection: WebSocketConnection<AsyncWebSocketHandler>, code: CloseCode, reason: String) {
        // `data` stays: the async side no longer holds the connection, so
        // no cycle is left, and a client's connect that completes after a
        // close in the same read still hands over the (ended) connection.
        connection.data?.ended(code: code, reason: reason)
    }
}
