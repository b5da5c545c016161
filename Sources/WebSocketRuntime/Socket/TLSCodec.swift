import CLibSSL
import TLSKit
import UVKit
import WebSocketCore

/// TLS between a connection's socket and its protocol: a record codec the
/// connection holds (one pointer, nil for plain connections), not a layer it
/// is built on. Plaintext goes in and out of the connection's one write
/// funnel; the protocol, the HTTP phase and the cork do not know it is there.
///
/// Reads land in the loop's ciphertext input (`TLSLoop`); OpenSSL decrypts
/// them straight into the buffer the protocol reads (the head buffer or the
/// loop's ring), and each decrypted piece is parsed as one read. Writes come
/// from the funnel (`AnyWebSocketConnection.writeNow`), are sealed with one
/// `SSL_write` per flush (a header and its payload share their first
/// record), and leave as ciphertext with one system call; what the socket
/// refuses is queued as ciphertext.
///
/// Loop thread only. The connection is passed to every call, not kept: the
/// codec lives inside it and dies with it.
final class TLSCodec {
    /// The `SSL *`, owned; freed in the connection's close callback (`free`).
    private var ssl: OpaquePointer?
    /// Holds the `SSL_CTX` (and the SNI table its callback reads) for as long
    /// as the `SSL` lives.
    private let tlsContext: TLSContext
    /// The loop's TLS state, not counted (the loop context holds it).
    private let loopTLS: Unmanaged<TLSLoop>
    private let role: Role
    private var handshakeDone = false
    /// Held back by the loop's handshake cap, in its waiting list.
    private var awaitingTurn = false
    /// Renegotiation exists in TLS 1.2 only (1.3 has none; its post-handshake
    /// writes, such as a KeyUpdate answer, are legitimate).
    private var isTLS12 = false

    init(role: Role, context: TLSContext, serverName: String?, loop: TLSLoop) {
        tlsContext = context
        self.role = role
        loopTLS = Unmanaged.passUnretained(loop)
        ERR_clear_error()
        ssl = role == .server ? context.makeServerConnection() : context.makeClientConnection(serverName: serverName ?? "")
        // No session (OpenSSL out of memory): the connection fails at its
        // first event (`refuseWithoutSession`), the process goes on.
        guard let ssl else { return }
        BIO_up_ref(loop.bio)
        SSL_set_bio(ssl, loop.bio, loop.bio)
    }

    /// The session could not be made (`SSL_new` failed): the connection
    /// ends as a failed TLS handshake, with OpenSSL's reason in the log.
    private func refuseWithoutSession(_ connection: AnyWebSocketConnection) {
        connection.stopReading()
        connection.tlsFailed(.handshakeFailed("cannot make a TLS session: \(OpenSSLErrors.drain())"))
    }

    // MARK: Reading

    /// The loop's ciphertext input; past the iteration's handshake cap, no
    /// room: libuv then reports `didRunOutOfReadBuffer` and the bytes stay
    /// in the kernel.
    func readBuffer() -> UnsafeMutableRawBufferPointer {
        loopTLS._withUnsafeGuaranteedRef { tls in
            if !handshakeDone && tls.handshakeBudget <= 0 { return UnsafeMutableRawBufferPointer(start: nil, count: 0) }
            return tls.input
        }
    }

    /// The handshake cap held this connection back: it waits for its turn.
    func heldBack(_ connection: AnyWebSocketConnection) {
        guard !handshakeDone, !awaitingTurn else { return }
        awaitingTurn = true
        loopTLS._withUnsafeGuaranteedRef { $0.wait(connection) }
        connection.endpointCore.metrics.tlsHandshakesDeferred &+= 1
    }

    /// Its turn came (`TLSLoop`): reading starts again.
    func turnCame(_ connection: AnyWebSocketConnection) {
        awaitingTurn = false
        try? connection.startReading()
    }

    /// `count` bytes of ciphertext arrived in the loop's input.
    func didRead(_ count: Int, on connection: AnyWebSocketConnection) {
        guard count > 0, !connection.isClosing else { return }
        guard ssl != nil else { return refuseWithoutSession(connection) }
        loopTLS._withUnsafeGuaranteedRef { tls in
            tls.supply(count)
            if !handshakeDone {
                tls.handshakeBudget &-= 1
                guard continueHandshake(tls, connection) else { return }
            }
            readPlaintext(tls, connection)
            // Every byte of a read is OpenSSL's by now (it asks for more
            // only once the BIO is empty); nothing is left for a later read.
            tls.supply(0)
        }
    }

    /// A client's TCP connect succeeded: reading starts and its ClientHello
    /// goes now; the HTTP request follows once the handshake is done.
    func start(on connection: AnyWebSocketConnection) {
        guard ssl != nil else { return refuseWithoutSession(connection) }
        do { try connection.startReading() } catch {
            connection.connectFinished(error as? UVError ?? UVError(-1))
            return
        }
        loopTLS._withUnsafeGuaranteedRef { tls in
            tls.supply(0)
            _ = continueHandshake(tls, connection)
        }
    }

    /// Works the handshake with what has arrived. Returns true once it is done
    /// and the connection still stands (application data may follow in the
    /// same read).
    private func continueHandshake(_ tls: TLSLoop, _ connection: AnyWebSocketConnection) -> Bool {
        guard let ssl else { return false }
        ERR_clear_error()
        tls.writer = connection
        let result = SSL_do_handshake(ssl)
        tls.flush()
        if result == 1 {
            handshakeDone = true
            isTLS12 = SSL_version(ssl) <= uvws_tls_1_2()
            // The client's TCP connect was reported to nobody yet: the request goes now.
            if role == .client { connection.didConnect(nil) }
            return !connection.isClosing
        }
        let error = SSL_get_error(ssl, result)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return false }
        let failure = TLSFailure.of(ssl)
        connection.stopReading()
        connection.tlsFailed(failure)
        return false
    }

    /// Decrypts until OpenSSL has nothing more to give, each piece into the
    /// buffer the protocol reads and parsed as one read. Reads go on to the
    /// end even if the connection pauses for backpressure meanwhile: the
    /// bytes left the kernel already (a plain read is parsed whole too).
    private func readPlaintext(_ tls: TLSLoop, _ connection: AnyWebSocketConnection) {
        while !connection.isClosing, let ssl {
            let region = connection.plainReadBuffer()
            guard let base = region.baseAddress, region.count > 0 else { return }
            tls.writer = connection
            // Before every call whose result `SSL_get_error` reads: an error
            // left in this thread's queue (by the application, on the loop
            // thread) would make a good result look failed.
            ERR_clear_error()
            let n = SSL_read(ssl, base, Int32(clamping: region.count))
            // Asked now, before the piece is parsed: a reply sealed meanwhile
            // writes through the loop's shared BIO, which clears the retry
            // flag this answer is read from.
            let error = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, n)
            if tls.outputCount > 0 && isTLS12 {
                // A TLS 1.2 peer got a record written back from a read: its
                // renegotiation, refused with an alert (h2o spots it the same way).
                tls.flush()
                connection.tlsBroken("TLS renegotiation refused")
                return
            }
            tls.flush()
            // Even with nothing decrypted the read is ended: asking for the
            // buffer moved the connection's unparsed remainder into the
            // loop's ring, and ending the read moves it back.
            connection.plainDidRead(Int(max(n, 0)))
            if n > 0 { continue }
            switch error {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return
            case SSL_ERROR_ZERO_RETURN:
                // close_notify: the peer's end of the stream, as a FIN is.
                connection.connectionLost()
                return
            default:
                connection.tlsBroken("TLS error: \(OpenSSLErrors.drain())")
                return
            }
        }
    }

    // MARK: Writing

    /// Seals up to three plaintext pieces, in order, and writes the records
    /// (`AnyWebSocketConnection.writeCiphertext`).
    func seal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ c: UnsafeRawBufferPointer,
              on connection: AnyWebSocketConnection) {
        // Before the handshake there are no keys: only a server's answer to a
        // handshake that never finished (a 408 to a stalled peer) gets here,
        // and it is dropped with the connection.
        guard !connection.writesClosed, handshakeDone, ssl != nil else { return }
        loopTLS._withUnsafeGuaranteedRef { tls in
            tls.writer = connection
            if b.count == 0 && c.count == 0 {
                seal(a, connection)
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
                seal(UnsafeRawBufferPointer(start: staging, count: filled), connection)
                seal(restOfA, connection)
                seal(restOfB, connection)
                seal(restOfC, connection)
            }
            tls.flush()
        }
    }

    private func seal(_ plaintext: UnsafeRawBufferPointer, _ connection: AnyWebSocketConnection) {
        var offset = 0
        while offset < plaintext.count, !connection.writesClosed, let ssl {
            ERR_clear_error()
            let n = SSL_write(ssl, plaintext.baseAddress! + offset, Int32(clamping: plaintext.count - offset))
            if n <= 0 {
                // The BIO takes every byte, so this is OpenSSL refusing: the
                // connection cannot go on.
                _ = OpenSSLErrors.drain()
                connection.writeFailed()
                return
            }
            offset += Int(n)
        }
    }

    /// Sends TLS's close_notify alert (RFC 8446 §6.1) before FIN.
    func sendCloseNotify(on connection: AnyWebSocketConnection) {
        guard handshakeDone, !connection.writesClosed, let ssl else { return }
        loopTLS._withUnsafeGuaranteedRef { tls in
            tls.writer = connection
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
            tls.flush()
        }
    }

    /// The connection's handle closed: the session goes, and the loop's TLS
    /// state forgets the connection.
    func free(from connection: AnyWebSocketConnection) {
        loopTLS._withUnsafeGuaranteedRef { tls in
            if awaitingTurn { tls.stopWaiting(connection) }
            if tls.writer === connection { tls.writer = nil }
        }
        if let ssl { SSL_free(ssl) }
        ssl = nil
    }
}
