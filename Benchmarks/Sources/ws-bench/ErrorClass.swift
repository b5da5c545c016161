import WebSocketClient

/// What went wrong with a connection, in the classes a user acts on: the
/// report counts each, and any makes the run fail (exit status 1).
enum ErrorClass: String, Codable, CaseIterable, CodingKeyRepresentable {
    /// Nothing listens at the address.
    case refused
    /// The host name did not resolve.
    case dns
    /// wss://: the certificate chain leads to no trusted authority.
    case tlsUntrusted = "tls-untrusted"
    /// wss://: the certificate names another host.
    case tlsHostMismatch = "tls-host-mismatch"
    /// wss://: the TLS handshake failed otherwise.
    case tls
    /// The server answered the upgrade with another status than 101
    /// (`handshakeStatuses` counts each status).
    case handshakeStatus = "handshake-status"
    /// The server closed an open connection during the run
    /// (`peerCloseCodes` counts each code).
    case closedByPeer = "closed-by-peer"
    /// An echo that differs from what was sent.
    case mismatch
    /// No complete handshake within its timeout.
    case timeout
    /// Anything else: the TCP connect failed, a malformed 101, an extension refused.
    case other

    init(_ error: WebSocketClientError) {
        switch error {
        case .connectionRefused: self = .refused
        case .hostNotFound: self = .dns
        case .certificateUntrusted: self = .tlsUntrusted
        case .hostnameMismatch: self = .tlsHostMismatch
        case .tlsHandshakeFailed, .tlsConfiguration: self = .tls
        case .handshakeRejected: self = .handshakeStatus
        case .handshakeTimeout: self = .timeout
        default: self = .other
        }
    }
}
