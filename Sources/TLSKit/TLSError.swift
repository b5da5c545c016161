import CLibSSL

/// Why a TLS context could not be made from its configuration.
public enum TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A certificate, key or CA file could not be read or parsed.
    case cannotLoad(file: String, reason: String)
    /// The private key does not belong to the certificate.
    case keyDoesNotMatchCertificate(certificate: String, reason: String)
    /// OpenSSL refused a setting (out of memory, an unsupported version).
    case setupFailed(String)

    /// One line naming the cause, fit to print as it is.
    public var description: String {
        switch self {
        case .cannotLoad(let file, let reason): return "cannot load \(file): \(reason)"
        case .keyDoesNotMatchCertificate(let file, let reason): return "the private key does not match \(file): \(reason)"
        case .setupFailed(let reason): return "TLS set-up failed: \(reason)"
        }
    }
}

/// Why one connection's TLS handshake failed, as its peer can act on it. A
/// client tells an untrusted chain from a name that does not match.
public enum TLSFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The chain does not lead to a trusted authority (or is expired, or
    /// self-signed): OpenSSL's verification error.
    case untrustedCertificate(String)
    /// The certificate is valid but names another host.
    case hostnameMismatch(String)
    /// Anything else: not TLS at all (plain HTTP on a TLS port), no common
    /// version or cipher, a protocol error.
    case handshakeFailed(String)

    /// One line naming the cause, fit to print as it is.
    public var description: String {
        switch self {
        case .untrustedCertificate(let why): return "untrusted certificate: \(why)"
        case .hostnameMismatch(let why): return "certificate host name mismatch: \(why)"
        case .handshakeFailed(let why): return "TLS handshake failed: \(why)"
        }
    }

    /// Classifies the failure of `ssl`'s handshake; drains OpenSSL's error
    /// queue for this thread.
    public static func of(_ ssl: OpaquePointer) -> TLSFailure {
        let result = SSL_get_verify_result(ssl)
        let queued = OpenSSLErrors.drain()
        if result == X509_V_OK { return .handshakeFailed(queued) }
        let text = String(cString: X509_verify_cert_error_string(result))
        if result == X509_V_ERR_HOSTNAME_MISMATCH || result == X509_V_ERR_IP_ADDRESS_MISMATCH {
            return .hostnameMismatch(text)
        }
        return .untrustedCertificate(text)
    }
}

/// OpenSSL keeps errors in a per-thread queue; every failure here reads and
/// empties it, so a stale error never leaks into the next connection's report.
public enum OpenSSLErrors {
    /// Empties OpenSSL's error queue of this thread and returns its entries, joined: the reason
    /// behind a failed call.
    public static func drain() -> String {
        var parts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            parts.append(buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return parts.isEmpty ? "no OpenSSL error recorded" : parts.joined(separator: "; ")
    }
}
