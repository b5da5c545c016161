import CLibSSL
import CTLSBuffers
import Synchronization

/// An OpenSSL `SSL_CTX`: the settings, certificates and trust every TLS
/// connection made from it shares. Immutable once made; reloading
/// certificates makes a new one (`TLSCredentials`), and connections keep the
/// context they began with.
///
/// Thread-safe to share (OpenSSL's contexts are reference-counted and
/// locked), though a server group makes one per loop: OpenSSL 3 contends on
/// a shared context's locks.
public final class TLSContext: @unchecked Sendable {
    /// The `SSL_CTX *`, owned.
    public let raw: OpaquePointer
    /// SNI: host name to its own context. Looked up by the default context's
    /// `server_name` callback, whose argument is this object, unretained: a
    /// connection holds its `TLSContext` until its `SSL` is freed.
    private let hosts: [String: TLSContext]

    private init(raw: OpaquePointer, hosts: [String: TLSContext] = [:]) {
        self.raw = raw
        self.hosts = hosts
    }

    deinit { SSL_CTX_free(raw) }

    // MARK: Making contexts

    /// Whether OpenSSL's record buffers come from the per-thread list (see
    /// CTLSBuffers); false only if something allocated through OpenSSL
    /// before this program's start-up code ran.
    public static var recordBufferPoolInstalled: Bool { uvws_tls_buffer_pool_installed() != 0 }
    /// Record buffers this thread took from its list so far.
    public static var recordBuffersReused: Int { Int(uvws_tls_buffer_pool_reused()) }

    /// A server context: the default certificate, one context per SNI host
    /// name, ALPN `http/1.1`, no renegotiation, no session cache.
    public static func server(_ configuration: TLSServerConfiguration) throws(TLSError) -> TLSContext {
        var hosts: [String: TLSContext] = [:]
        for (name, files) in configuration.hostCertificates {
            hosts[name.lowercased()] = TLSContext(raw: try makeServerContext(files, configuration))
        }
        let context = TLSContext(raw: try makeServerContext(configuration.certificate, configuration), hosts: hosts)
        if !hosts.isEmpty {
            uvws_ssl_ctx_set_servername_callback(context.raw, { ssl, _, arg in
                guard let ssl, let arg else { return SSL_TLSEXT_ERR_OK }
                let owner = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
                if let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name),
                   let host = owner.context(forHost: String(cString: name)) {
                    SSL_set_SSL_CTX(ssl, host.raw)
                }
                return SSL_TLSEXT_ERR_OK
            }, Unmanaged.passUnretained(context).toOpaque())
        }
        return context
    }

    /// A client context: the trust, and the minimum version. Host names are
    /// set per connection (`makeConnection(serverName:)`).
    public static func client(_ configuration: TLSClientConfiguration) throws(TLSError) -> TLSContext {
        let ctx = try makeContext(TLS_client_method(), minimumVersion: configuration.minimumVersion)
        switch configuration.trust {
        case .system:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            if SSL_CTX_set_default_verify_paths(ctx) != 1 {
                SSL_CTX_free(ctx)
                throw .setupFailed("no default certificate store: \(OpenSSLErrors.drain())")
            }
        case .certificateAuthorities(let file):
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            if SSL_CTX_load_verify_locations(ctx, file, nil) != 1 {
                SSL_CTX_free(ctx)
                throw .cannotLoad(file: file, reason: OpenSSLErrors.drain())
            }
        case .acceptAnyCertificate:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        return TLSContext(raw: ctx)
    }

    /// The context for an SNI host name: an exact name, then a wildcard for
    /// its first label.
    func context(forHost name: String) -> TLSContext? {
        let name = name.lowercased()
        if let exact = hosts[name] { return exact }
        guard let dot = name.firstIndex(of: ".") else { return nil }
        return hosts["*" + name[dot...]]
    }

    // MARK: Connections

    /// A new `SSL *` in the server role, owned by the caller (`SSL_free`).
    public func makeServerConnection() -> OpaquePointer? {
        guard !TLSContext.refusesNextSession(), let ssl = SSL_new(raw) else { return nil }
        SSL_set_accept_state(ssl)
        return ssl
    }

    /// A new `SSL *` in the client role for `serverName` (sent as SNI unless
    /// it is an IP address, and checked against the certificate unless the
    /// trust is `.acceptAnyCertificate`), offering ALPN `http/1.1`.
    public func makeClientConnection(serverName: String) -> OpaquePointer? {
        guard !TLSContext.refusesNextSession(), let ssl = SSL_new(raw) else { return nil }
        SSL_set_connect_state(ssl)
        // RFC 6066 §3: SNI carries DNS names only, never an address literal.
        if !serverName.contains(":") && !serverName.allSatisfy({ $0.isNumber || $0 == "." }) {
            _ = uvws_ssl_set_server_name(ssl, serverName)
        }
        if SSL_CTX_get_verify_mode(raw) & SSL_VERIFY_PEER != 0 {
            // An IP literal is matched against the certificate's IP names.
            SSL_set1_host(ssl, serverName)
        }
        _ = uvws_ssl_set_alpn_http11(ssl)
        return ssl
    }

    // MARK: Building

    private static func makeContext(_ method: OpaquePointer?, minimumVersion: TLSVersion) throws(TLSError) -> OpaquePointer {
        guard let ctx = SSL_CTX_new(method) else { throw .setupFailed(OpenSSLErrors.drain()) }
        let version = minimumVersion == .tls13 ? uvws_tls_1_3() : uvws_tls_1_2()
        if uvws_ssl_ctx_set_min_version(ctx, version) != 1 {
            SSL_CTX_free(ctx)
            throw .setupFailed("minimum version: \(OpenSSLErrors.drain())")
        }
        uvws_ssl_ctx_refuse_renegotiation(ctx)
        // RELEASE_BUFFERS: OpenSSL frees a connection's two record buffers
        // (about 34 KB) whenever they empty, so an idle connection holds
        // none. A busy one would malloc and free them around nearly every
        // record; CTLSBuffers keeps freed ones in a list per loop thread.
        // ACCEPT_MOVING_WRITE_BUFFER: a retried write may come from elsewhere.
        _ = uvws_ssl_ctx_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        return ctx
    }

    private static func makeServerContext(_ files: TLSCertificateFiles,
                                          _ configuration: TLSServerConfiguration) throws(TLSError) -> OpaquePointer {
        let ctx = try makeContext(TLS_server_method(), minimumVersion: configuration.minimumVersion)
        if SSL_CTX_use_certificate_chain_file(ctx, files.chain) != 1 {
            SSL_CTX_free(ctx)
            throw .cannotLoad(file: files.chain, reason: OpenSSLErrors.drain())
        }
        if SSL_CTX_use_PrivateKey_file(ctx, files.privateKey, SSL_FILETYPE_PEM) != 1 {
            SSL_CTX_free(ctx)
            throw .cannotLoad(file: files.privateKey, reason: OpenSSLErrors.drain())
        }
        if SSL_CTX_check_private_key(ctx) != 1 {
            SSL_CTX_free(ctx)
            throw .keyDoesNotMatchCertificate(certificate: files.chain, reason: OpenSSLErrors.drain())
        }
        uvws_ssl_ctx_disable_cache(ctx)
        // The server's order, AES-128-GCM first: as strong as a WebSocket
        // needs, and cheaper per byte than AES-256, which OpenSSL's default
        // order puts first (6% on 1 KiB records here, by `openssl speed`).
        _ = SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256")
        _ = SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
        uvws_ssl_ctx_prefer_server_ciphers(ctx)
        SSL_CTX_set_num_tickets(ctx, max(configuration.sessionTickets, 0))
        // ALPN (RFC 7301): a browser that offers h2 first gets http/1.1,
        // one that offers neither gets none (OpenSSL's SSL_select_next_proto).
        uvws_ssl_ctx_select_alpn_http11(ctx)
        return ctx
    }
}

extension TLSContext {
    /// Sessions still to refuse, as `SSL_new` does when OpenSSL cannot
    /// allocate: the tests' way to reach that path, which memory pressure
    /// alone reaches in production. Zero outside tests.
    private static let sessionsToRefuse = Atomic<Int>(0)

    /// Makes the next `count` session creations fail (tests only).
    package static func refuseSessions(_ count: Int) {
        sessionsToRefuse.store(count, ordering: .relaxed)
    }

    static func refusesNextSession() -> Bool {
        // One relaxed load per connection when nothing is to be refused.
        guard sessionsToRefuse.load(ordering: .relaxed) > 0 else { return false }
        return sessionsToRefuse.wrappingAdd(-1, ordering: .relaxed).oldValue > 0
    }
}
