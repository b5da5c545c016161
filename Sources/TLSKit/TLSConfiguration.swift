/// A certificate chain and its private key, both PEM files. The chain file
/// holds the leaf first, then the intermediates (the order OpenSSL's
/// `SSL_CTX_use_certificate_chain_file` expects).
public struct TLSCertificateFiles: Sendable, Hashable {
    /// PEM file: the certificate, then its intermediates.
    public var chain: String
    /// PEM file: the certificate's private key.
    public var privateKey: String

    /// PEM file paths: the certificate chain (leaf first) and its private key.
    public init(chain: String, privateKey: String) {
        self.chain = chain
        self.privateKey = privateKey
    }
}

/// The oldest protocol version an end accepts. TLS 1.0 and 1.1 are not
/// offered at all (RFC 8996 deprecates them).
public enum TLSVersion: Sendable {
    case tls12
    case tls13
}

/// What a server needs to speak TLS: its certificate, optionally one per host
/// name (SNI; the client's `server_name` picks it, and unknown or absent
/// names get the default), and the minimum version.
public struct TLSServerConfiguration: Sendable {
    /// The files the server presents (read again by `reloadCertificates`).
    public var certificate: TLSCertificateFiles
    /// Host name (lowercase, or `*.example.com` for one label) to certificate.
    public var hostCertificates: [String: TLSCertificateFiles] = [:]
    /// The oldest TLS version accepted (TLS 1.2 by default; 1.3 is always offered).
    public var minimumVersion: TLSVersion = .tls12
    /// Session tickets issued per handshake (TLS 1.3 resumption). The server
    /// keeps no session cache either way.
    public var sessionTickets: Int = 1

    /// A server's configuration from its certificate and key files.
    public init(certificate: TLSCertificateFiles) {
        self.certificate = certificate
    }
}

/// Whom a client trusts.
public enum TLSTrust: Sendable, Hashable {
    /// The system's certificate store (OpenSSL's default paths), with the
    /// certificate's names checked against the URL's host.
    case system
    /// Only certificates issued by the authorities in this PEM file (host
    /// names still checked).
    case certificateAuthorities(file: String)
    /// Any certificate, unchecked: for tests against a self-signed server only.
    case acceptAnyCertificate
}

/// What a client needs to speak TLS (`wss://`).
public struct TLSClientConfiguration: Sendable {
    /// What the client verifies the server's certificate against.
    public var trust: TLSTrust = .system
    /// The oldest TLS version the client offers (TLS 1.2 by default).
    public var minimumVersion: TLSVersion = .tls12

    /// A client's configuration: which certificates it trusts (the system store by default).
    public init(trust: TLSTrust = .system) {
        self.trust = trust
    }
}
