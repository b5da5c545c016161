import CLibSSL
import TLSKit
import UVKit
import WebSocketCore

/// A connection's stream with TLS between the socket and the connection: the
/// same events, decrypted on the way up and sealed on the way down, so the
/// connection, its HTTP phase, the state machine and the cork do not change.
///
/// Reads land in the loop's TLS input (`TLSLoop`); OpenSSL decrypts them into
/// the very buffer the connection would have read into (its head buffer, the
/// loop's ring), and each decrypted piece is handed up as one read. Writes
/// reach `sealAndWrite` from the transport's one funnel (`writeNow`), are
/// sealed with one `SSL_write` per flush (a header and its payload with its
/// first record), and leave as ciphertext with one system call; what the
/// socket refuses is queued as ciphertext.
///
/// Loop thread only.
final class SecureConnectionStream<Handler: WebSocketHandler>: ConnectionStream<Handler> {
    /// The `SSL *`, owned; freed in the close callback.
    private var ssl: OpaquePointer?
    /// Holds the `SSL_CTX` (and the SNI table its callback reads) for as long
    /// as the `SSL` lives.
    private let tlsContext: TLSContext
    /// The loop's TLS state, not counted (the loop context holds it).
    private let loopTLS: Unmanaged<TLSLoop>
    private var handshakeDone = false
    /// Held back by the loop's handshake cap, in its waiting list.
    private var awaitingTurn = false
    /// Renegotiation exists in TLS 1.2 only (1.3 has none; its post-handshake
    /// writes, such as a KeyUpdate answer, are legitimate).
    private var isTLS12 = false

    init(context: LoopContext, role: Role, maxBackpressure: Int, tls: TLSContext, serverName: String?) {
        tlsContext = tls
        ERR_clear_error()
        let made = role == .server ? tls.makeServerConnection() : tls.makeClientConnection(serverName: serverName ?? "")
        ssl = made
        loopTLS = Unmanaged.passUnretained(context.tls)
        super.init(context: context, role: role, maxBackpressure: maxBackpressure)
        encrypts = true
        // No session (OpenSSL out of memory): this connection fails at its
        // first event (`refuseWithoutSession`), the process goes on.
        guard let made else { return }
        let bio = loopTLS._withUnsafeGuaranteedRef { $0.bio }
        BIO_up_ref(bio)
        SSL_set_bio(made, bio, bio)
    }

    /// The session could not be made (`SSL_new` failed): the connection
    /// ends as a failed TLS handshake, with OpenSSL's reason in the log.
    private func refuseWithoutSession() {
        stopReading()
        let why = "cannot make a TLS session: \(OpenSSLErrors.drain())"
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.tlsFailed(.handshakeFailed(why)) }
    }

    // MARK: Reading

    override func readBuffer() -> UnsafeMutableRawBufferPointer {
        loopTLS._withUnsafeGuaranteedRef { tls in
            // Past the iteration's cap, no room: libuv then reports
            // `didRunOutOfReadBuffer` and the bytes stay in the kernel.
            if !handshakeDone && tls.handshakeBudget <= 0 { return UnsafeMutableRawBufferPointer(start: nil, count: 0) }
            return tls.input
        }
    }

    override func didRunOutOfReadBuffer() {
        stopReading()
        guard !handshakeDone, !awaitingTurn else { return }
        awaitingTurn = true
        loopTLS._withUnsafeGuaranteedRef { $0.wait(self) }
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.endpoint.metrics.tlsHandshakesDeferred &+= 1 }
    }

    override func handshakeTurnCame() {
        awaitingTurn = false
        try? startReading()
    }

    override func didRead(_ count: Int) {
        guard count > 0, !isClosing else { return }
        guard ssl != nil else { return refuseWithoutSession() }
        loopTLS._withUnsafeGuaranteedRef { tls in
            tls.supply(count)
            if !handshakeDone {
                tls.handshakeBudget &-= 1
                guard continueHandshake(tls) else { return }
            }
            readPlaintext(tls)
            // Every byte of a read is OpenSSL's by now (it asks for more
            // only once the BIO is empty); nothing is left for a later read.
            tls.supply(0)
        }
    }

    /// Works the handshake with what has arrived. Returns true once it is done
    /// and the connection still stands (application data may follow in the
    /// same read).
    private func continueHandshake(_ tls: TLSLoop) -> Bool {
        guard let ssl else { return false }
        ERR_clear_error()
        tls.writer = self
        let result = SSL_do_handshake(ssl)
        tls.flush()
        if result == 1 {
            handshakeDone = true
            isTLS12 = SSL_version(ssl) <= uvws_tls_1_2()
            if role == .client {
                // The TCP connect was reported to nobody yet: the request goes now.
                super.didConnect(nil)
            }
            return !isClosing
        }
        let error = SSL_get_error(ssl, result)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return false }
        let failure = TLSFailure.of(ssl)
        stopReading()
        connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.tlsFailed(failure) }
        return false
    }

    /// Decrypts until OpenSSL has nothing more to give, each piece into the
    /// buffer the connection reads into and handed up as one read. Reads go on
    /// to the end even if the connection pauses for backpressure meanwhile:
    /// the bytes left the kernel already (a plain read is parsed whole too).
    private func readPlaintext(_ tls: TLSLoop) {
        while !isClosing, let ssl {
            let region = super.readBuffer()
            guard let base = region.baseAddress, region.count > 0 else { return }
            tls.writer = self
            // Before every call whose result `SSL_get_error` reads: an error
            // left in this thread's queue (by the application, on the loop
            // thread) would make a good result look failed.
            ERR_clear_error()
            let n = SSL_read(ssl, base, Int32(clamping: region.count))
            if tls.outputCount > 0 && isTLS12 {
                // A TLS 1.2 peer got a record written back from a read: its
                // renegotiation, refused with an alert (h2o spots it the same way).
                tls.flush()
                connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef {
                    $0.tlsBroken("TLS renegotiation refused")
                }
                return
            }
            tls.flush()
            // Even with nothing decrypted the read is ended: asking for the
            // buffer moved the connection's unparsed remainder into the
            // loop's ring, and ending the read moves it back.
            super.didRead(Int(max(n, 0)))
            if n > 0 { continue }
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return
            case SSL_ERROR_ZERO_RETURN:
                // close_notify: the peer's end of the stream, as a FIN is.
                super.didReachEnd(nil)
                return
            default:
                let why = OpenSSLErrors.drain()
                connectionRef.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.tlsBroken("TLS error: \(why)") }
                return
            }
        }
    }

    // MARK: Writing

    override func sealAndWrite(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ c: UnsafeRawBufferPointer) {
        // Before the handshake there are no keys: only a server's answer to a
        // handshake that never finished (a 408 to a stalled peer) gets here,
        // and it is dropped with the connection.
        guard !writesClosed, handshakeDone, ssl != nil else { return }
        loopTLS._withUnsafeGuaranteedRef { tls in
            tls.writer = self
            if b.count == 0 && c.count == 0 {
                seal(a)
            } else {
                // Several pieces (what was corked, a header, a payload by
                // reference): their first record's worth is copied together,
                // so a header never makes a record of its own, and the rest
                // is sealed where it lies (records stay full; the copy stays
                // at most one record, whatever the payload's size).
                let staging = tls.staging.baseAddress!
                var filled = 0
                func gather(_ piece: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
                    let n = min(piece.count, TLSLoop.recordSize - filled)
                    if n > 0 { (staging + filled).copyMemory(from: piece.baseAddress!, byteCount: n) }
                    filled += n
                    return UnsafeRawBufferPointer(rebasing: piece[n...])
                }
                let restOfA = gather(a), restOfB = gather(b), restOfC = gather(c)
                seal(UnsafeRawBufferPointer(start: staging, count: filled))
                seal(restOfA)
                seal(restOfB)
                seal(restOfC)
            }
            tls.flush()
        }
    }

    private func seal(_ plaintext: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < plaintext.count, !writesClosed, let ssl {
            ERR_clear_error()
            let n = SSL_write(ssl, plaintext.baseAddress! + offset, Int32(clamping: plaintext.count - offset))
            if n <= 0 {
                // The BIO takes every byte, so this is OpenSSL refusing: the
                // connection cannot go on.
                writesClosed = true
                _ = OpenSSLErrors.drain()
                writeDidFail()
                return
            }
            offset += Int(n)
        }
    }

    override func sendCloseNotify() {
        guard handshakeDone, !writesClosed, let ssl else { return }
        loopTLS._withUnsafeGuaranteedRef { tls in
            tls.writer = self
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
            tls.flush()
        }
    }

    // MARK: Connecting and closing

    override func didConnect(_ error: UVError?) {
        guard error == nil else {
            super.didConnect(error)
            return
        }
        // The client speaks first: its ClientHello goes now, and the HTTP
        // request once the handshake is done (`continueHandshake`).
        guard ssl != nil else { return refuseWithoutSession() }
        setNoDelay(true)
        do { try startReading() } catch {
            super.didConnect(error as? UVError ?? UVError(-1))
            return
        }
        loopTLS._withUnsafeGuaranteedRef { tls in
            tls.supply(0)
            _ = continueHandshake(tls)
        }
    }

    override func didClose() {
        loopTLS._withUnsafeGuaranteedRef { tls in
            if awaitingTurn { tls.stopWaiting(self) }
            if tls.writer === self { tls.writer = nil }
        }
        if let ssl { SSL_free(ssl) }
        ssl = nil
        super.didClose()
    }
}
