import WebSocketCore

/// Why a client connection did not open, each case something a user can act on.
public enum WebSocketClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The URL is not `ws://host[:port][/path][?query]`.
    case invalidURL(String)
    /// A scheme other than `ws` and `wss`.
    case unsupportedScheme(String)
    /// The options are out of range.
    case invalidOptions(String)
    /// The host name did not resolve.
    case hostNotFound(host: String, reason: String)
    /// Nothing listens at the address (ECONNREFUSED).
    case connectionRefused(host: String, port: Int)
    /// The TCP connect failed otherwise (unreachable, timed out by the kernel).
    case connectFailed(host: String, port: Int, reason: String)
    /// The server answered with another status than 101: its status and the
    /// start of its body (at most 512 bytes).
    case handshakeRejected(status: Int, body: String)
    /// A 101 that breaks RFC 6455 §4.1 (a wrong `Sec-WebSocket-Accept`, an
    /// unrequested subprotocol or extension, a malformed head).
    case invalidHandshakeResponse(String)
    /// No complete 101 within the handshake timeout.
    case handshakeTimeout
    /// The server closed the connection before its response was complete.
    case connectionClosedDuringHandshake
    /// `connect` after `shutdown`, or a connect under way when the client
    /// was shut down or released.
    case clientShutDown
    /// `run()` where it cannot run: a second time, or on a shared loop.
    case notRunnable(String)
    /// `wss://`: the server's certificate chain does not lead to a trusted
    /// authority (OpenSSL's verification error says why).
    case certificateUntrusted(String)
    /// `wss://`: the certificate is trusted but names another host.
    case hostnameMismatch(host: String, reason: String)
    /// `wss://`: the TLS handshake failed otherwise (no common version, not a
    /// TLS server).
    case tlsHandshakeFailed(String)
    /// `wss://`: the TLS options could not be applied (an unreadable CA file).
    case tlsConfiguration(String)

    /// One line naming the cause, fit to print as it is.
    public var description: String {
        switch self {
        case .invalidURL(let s): return "invalid WebSocket URL: \(s)"
        case .unsupportedScheme(let s): return "unsupported scheme \(s) (use ws:// or wss://)"
        case .invalidOptions(let s): return "invalid options: \(s)"
        case .hostNotFound(let host, let reason): return "cannot resolve \(host): \(reason)"
        case .connectionRefused(let host, let port): return "connection refused by \(host):\(port)"
        case .connectFailed(let host, let port, let reason): return "cannot connect to \(host):\(port): \(reason)"
        case .handshakeRejected(let status, let body): return "server answered \(status) instead of 101: \(body)"
        case .invalidHandshakeResponse(let s): return "invalid handshake response: \(s)"
        case .handshakeTimeout: return "no handshake response within the timeout"
        case .connectionClosedDuringHandshake: return "the server closed the connection during the handshake"
        case .clientShutDown: return "the client was shut down"
        case .notRunnable(let s): return "not possible now: \(s)"
        case .certificateUntrusted(let why): return "untrusted server certificate: \(why)"
        case .hostnameMismatch(let host, let why): return "the server certificate is not for \(host): \(why)"
        case .tlsHandshakeFailed(let why): return "TLS handshake failed: \(why)"
        case .tlsConfiguration(let why): return "TLS configuration: \(why)"
        }
    }
}
