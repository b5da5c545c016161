import WebSocketCore
import WebSocketRuntime

/// Settings of a client's connections (python-websockets' `connect` and
/// coder/websocket's `DialOptions` name the same things).
public struct WebSocketClientOptions: Sendable {
    /// Subprotocols to offer, in order of preference (`Sec-WebSocket-Protocol`).
    public var subprotocols: [String] = []
    /// The `Origin` header, for servers that check it; none by default.
    public var origin: String?
    /// More request headers, each a whole line without CRLF ("Authorization: Bearer x").
    public var headers: [String] = []
    /// A received message larger than this fails with 1009.
    public var maxMessageSize: Int = 16 * 1024 * 1024
    /// Pings after this much quiet (zero: none). Clients often sit behind NATs
    /// and proxies that drop quiet connections, so the default pings.
    public var keepAliveInterval: Duration = .seconds(30)
    /// How long to wait for a pong before closing with 1011 (zero: forever).
    public var keepAliveTimeout: Duration = .seconds(30)
    /// From the start of the TCP connect to the server's 101.
    public var handshakeTimeout: Duration = .seconds(10)
    /// How long the closing handshake may take.
    public var closeTimeout: Duration = .seconds(5)
    /// Bytes queued for the server past which `send` reports `.backpressure`.
    public var maxBackpressure: Int = 1024 * 1024
    /// How much one read takes in (the loop's ring, shared with a server on the
    /// same loop, which keeps the larger of the two sizes).
    public var receiveBufferSize: Int = 64 * 1024
    /// Largest response head accepted.
    public var maxResponseHeadSize: Int = 16 * 1024
    /// permessage-deflate (RFC 7692) to offer; nil (the default) offers none.
    /// `.forClient` keeps both contexts and lets the server limit ours.
    public var compression: CompressionOptions?
    /// Other per-message extensions to offer, after permessage-deflate.
    public var extensions: [any ExtensionNegotiator] = []
    /// For `wss://` URLs: whom to trust (the system store by default, with
    /// the host name checked) and the minimum version.
    public var tls = TLSClientConfiguration()

    /// The defaults in docs/options.md.
    public init() {}

    /// Why these options cannot run, or nil: the limits and durations both
    /// roles share, then the fields a connection's request carries, each of
    /// which must keep to the head's grammar, so that none can break the
    /// request or add a field of its own.
    func validationError() -> String? {
        if let problem = ConnectionSettings.problem(
            receiveBufferSize: receiveBufferSize, maxMessageSize: maxMessageSize, maxBackpressure: maxBackpressure,
            compression: compression,
            durations: ["keepAliveInterval": keepAliveInterval, "keepAliveTimeout": keepAliveTimeout,
                        "handshakeTimeout": handshakeTimeout, "closeTimeout": closeTimeout],
            headLimits: HTTPHeadLimits(maxHeadSize: maxResponseHeadSize)) {
            return problem
        }
        for name in subprotocols where !HTTPFieldRules.isToken(name) {
            return "subprotocols: \(name.debugDescription) is not a token (RFC 6455 §4.1)"
        }
        if let origin, origin.isEmpty || !HTTPFieldRules.isValidValue(origin) {
            return "origin: \(origin.debugDescription) is not a header value"
        }
        for line in headers where !HTTPFieldRules.isValidFieldLine(line) {
            return "headers: \(line.debugDescription) is not a \"Name: value\" line"
        }
        return nil
    }

    /// What the runtime applies to every connection of the client.
    var connectionSettings: ConnectionSettings {
        ConnectionSettings(role: .client, maxMessageSize: maxMessageSize, maxBackpressure: maxBackpressure,
                           keepAliveInterval: keepAliveInterval, keepAliveTimeout: keepAliveTimeout,
                           handshakeTimeout: handshakeTimeout, closeTimeout: closeTimeout,
                           headLimits: HTTPHeadLimits(maxHeadSize: maxResponseHeadSize))
    }
}
