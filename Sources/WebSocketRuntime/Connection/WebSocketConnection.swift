import TLSKit
import UVKit
import WebSocketCore

/// One WebSocket connection of a `Handler`, server-side or client-side: the
/// same type in both roles, and every line past the opening handshake is
/// shared. Everything it does is `AnyWebSocketConnection`'s (the one object
/// a socket is, with its TCP handle inside); this subclass adds only what
/// depends on the handler's type: the typed `data`, and the calls into the
/// handler and the owner, one class call per event.
///
/// Handlers get it in every call and may keep it (strongly) for later sends;
/// after `didClose` it only drops what is sent.
public final class WebSocketConnection<Handler: WebSocketHandler>: AnyWebSocketConnection {
    /// The application's per-connection state, typed by the handler.
    public var data: Handler.ConnectionData?

    /// - Parameters:
    ///   - tls: the TLS context to speak through, if any.
    ///   - serverName: a client's host name for SNI and certificate checks.
    package init(endpoint: Endpoint<Handler>, tls: TLSContext? = nil, serverName: String? = nil) {
        super.init(endpoint: endpoint, tls: tls, serverName: serverName)
    }

    /// The endpoint, typed (the base holds it).
    var endpoint: Endpoint<Handler> { unsafeDowncast(endpointCore, to: Endpoint<Handler>.self) }
    /// The handler, lent by the endpoint that holds it.
    var handler: Handler { endpoint.handler }

    /// The server or client this connection belongs to.
    package var owner: AnyObject? { endpointCore.owner }
    /// The loop of its server group it lives on (0 alone).
    package var loopIndex: UInt16 { endpointCore.loopIndex }

    // MARK: Into the handler and the owner

    override func deliverOpen() { handler.didOpen(self) }

    override func deliver(_ chunk: UnsafeRawBufferPointer, type: MessageType, isFinal: Bool) {
        endpointRef._withUnsafeGuaranteedRef {
            unsafeDowncast($0, to: Endpoint<Handler>.self).handler.didReceive(self, chunk: chunk, type: type, isFinal: isFinal)
        }
    }

    override func deliverPing(_ payload: UnsafeRawBufferPointer) { handler.didReceivePing(self, payload: payload) }
    override func deliverPong(_ payload: UnsafeRawBufferPointer) { handler.didReceivePong(self, payload: payload) }
    override func deliverDrain() { handler.didDrain(self) }
    override func deliverClose(code: CloseCode, reason: String) { handler.didClose(self, code: code, reason: reason) }
    override func httpPhaseEnded(_ outcome: HTTPPhaseOutcome) { endpoint.httpPhaseEnded(self, outcome) }
    override func connectFinished(_ error: UVError?) { endpoint.connectFinished(self, error) }
    override func httpDrained() { endpoint.httpDrained(self) }
    override func ownerForgets() { endpoint.connectionClosed(self) }
}

