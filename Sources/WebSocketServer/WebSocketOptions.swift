import TLSKit
import UVKit
import WebSocketCompression
import WebSocketCore
import WebSocketRuntime

/// Settings of a WebSocket server. The first two are ASP.NET Core's
/// `WebSocketOptions`; the rest are what production deployments set. See docs/options.md for each one's reasoning.
public struct WebSocketOptions: Sendable {
    /// How often a ping goes to a quiet peer so that proxies keep the connection
    /// open (ASP.NET's `KeepAliveInterval`, default 2 minutes). Zero turns pings off.
    public var keepAliveInterval: Duration = .seconds(120)
    /// How long to wait for a pong (or any frame) after a ping before the peer is
    /// taken for dead and the connection closed with 1011. Zero waits forever.
    public var keepAliveTimeout: Duration = .zero
    /// How many bytes one read takes in (ASP.NET's `ReceiveBufferSize`): the
    /// size of the loop's receive ring, a power of two of at least 256. Larger
    /// messages stream through it in chunks. The ring is one per loop, not one
    /// per connection, so the default is 64 KiB where ASP.NET's per-connection
    /// buffer defaults to 4 KiB: a read takes in what the kernel has, and an
    /// idle connection still holds no receive memory.
    public var receiveBufferSize: Int = 64 * 1024
    /// A message larger than this, over all its fragments, closes the connection
    /// with 1009. The default lets a 16 MiB message through.
    public var maxMessageSize: Int = 16 * 1024 * 1024
    /// Bytes queued for a peer past which `send` reports `.backpressure`; when
    /// the queue grew from replies to that peer's messages (an echo), reading
    /// from it stops until the queue is down to half.
    public var maxBackpressure: Int = 1024 * 1024
    /// A client that has not sent its whole request head by then is dropped
    /// (slowloris). Zero waits forever.
    public var handshakeTimeout: Duration = .seconds(10)
    /// How long a closing connection waits for the peer's close frame or FIN.
    public var closeTimeout: Duration = .seconds(5)
    /// Origins allowed to connect (exact `Origin` header values, such as
    /// "https://example.com"). Empty allows every origin; a request without
    /// `Origin` (not from a browser) is always allowed.
    public var allowedOrigins: [String] = []
    /// Subprotocols the server speaks. The first one the client offers that is
    /// listed here is chosen; a client that offers none still connects.
    public var subprotocols: [String] = []
    /// Open TCP connections past which new ones get 503. Zero means no limit.
    public var maxConnections: Int = 0
    /// Limits on the upgrade and static-file request heads (431 past them),
    /// and on a client's response head.
    public var requestHeadLimits = HTTPHeadLimits()
    /// permessage-deflate (RFC 7692); nil, the default, turns it off (offers
    /// are declined and messages go uncompressed). See `CompressionOptions`
    /// for what it costs and the CRIME/BREACH caveat.
    public var compression: CompressionOptions?
    /// Other per-message extensions this end supports, in order of preference
    /// (RFC 6455 §9), after permessage-deflate.
    public var extensions: [any ExtensionNegotiator] = []
    /// TLS for `wss://` and `https://` (static files too) on every listener
    /// of the server; nil, the default, serves plain TCP. The files are read
    /// when the server is made (`WebSocketServerError.tls` if they cannot be)
    /// and again on `reloadCertificates()`.
    public var tls: TLSServerConfiguration?
    /// How often each loop hands its counters (`WebSocketMetrics`) to
    /// swift-metrics, whose backend the application bootstraps (Prometheus,
    /// StatsD, ...); nil turns that off, and `metrics` still reads them. A
    /// message pays nothing for it: the loop bumps plain integers, and only
    /// this timer talks to the backend. At least 10 ms.
    public var metricsInterval: Duration? = .milliseconds(250)

    /// The defaults in docs/options.md.
    public init() {}

    /// The largest `receiveBufferSize`: one ring per loop, allocated whole.
    public static let maxReceiveBufferSize = ConnectionSettings.maxReceiveBufferSize

    /// Checks every field: a value that would make a server
    /// misbehave throws `WebSocketServerError.invalidOption` naming it.
    /// Durations of any size are accepted (past about 139 years they count
    /// as that: `Duration.milliseconds` saturates).
    public func validate() throws {
        if let problem = ConnectionSettings.problem(
            receiveBufferSize: receiveBufferSize, maxMessageSize: maxMessageSize, maxBackpressure: maxBackpressure,
            compression: compression,
            durations: ["keepAliveInterval": keepAliveInterval, "keepAliveTimeout": keepAliveTimeout,
                        "handshakeTimeout": handshakeTimeout, "closeTimeout": closeTimeout],
            headLimits: requestHeadLimits) {
            throw WebSocketServerError.invalidOption(problem)
        }
        if let metricsInterval, metricsInterval < .milliseconds(10) {
            throw WebSocketServerError.invalidOption("metricsInterval must be at least 10 ms, got \(metricsInterval)")
        }
        guard maxConnections >= 0 else { throw WebSocketServerError.invalidOption("maxConnections must not be negative") }
        for origin in allowedOrigins where !HTTPFieldRules.isValidValue(origin) || origin.isEmpty {
            throw WebSocketServerError.invalidOption("allowedOrigins: \(origin.debugDescription) is not a header value")
        }
        for name in subprotocols where !HTTPFieldRules.isToken(name) {
            // RFC 6455 §4.1: each is a token (RFC 7230 §3.2.6); anything else
            // could not be answered in Sec-WebSocket-Protocol.
            throw WebSocketServerError.invalidOption("subprotocols: \(name.debugDescription) is not a token")
        }
    }
}

/// Why a server could not start. Each description is one line naming the
/// cause, fit to print as it is (`error: cannot listen on ...`).
public enum WebSocketServerError: Error, CustomStringConvertible {
    /// An option out of range (`WebSocketOptions.validate`).
    case invalidOption(String)
    /// `serveFiles(from:)` was given a folder that does not exist.
    case staticRootNotFound(String)
    /// The listen host is neither an address nor a name that resolves.
    case hostNotFound(host: String, reason: UVError)
    /// Binding or listening failed: the port is taken, needs privileges, or
    /// the address is not one of this machine's.
    case cannotListen(host: String, port: Int, reason: UVError)
    /// The TLS certificate or key could not be loaded.
    case tls(TLSError)
    /// A call the server's state does not allow: `run()` a second time,
    /// `listen` after shutdown.
    case notRunnable(String)

    /// One line naming the cause, fit to print as it is.
    public var description: String {
        switch self {
        case .tls(let error):
            return "\(error)"
        case .invalidOption(let message):
            return "invalid option: \(message)"
        case .notRunnable(let message):
            return "not possible now: \(message)"
        case .staticRootNotFound(let path):
            return "static root \(path) is not a folder"
        case .hostNotFound(let host, let reason):
            return "cannot resolve host \(host): \(reason.message) (\(reason.name))"
        case .cannotListen(let host, let port, let reason):
            let shown = host.contains(":") ? "[\(host)]" : host
            return "cannot listen on \(shown):\(port): \(reason.message) (\(reason.name))"
        }
    }
}
