import CLibSSL
import UVKit

/// What every TLS connection on one loop shares, after uSockets: one custom
/// BIO that all of them read from and write through, the ciphertext buffers
/// behind it, and the handshake cap. Made by the loop's first TLS connection.
///
/// Buffers: a read lands in `input` (64 KiB, the loop's; nothing per
/// connection) and OpenSSL decrypts from it straight into the buffer the
/// connection parses. Records OpenSSL writes gather in `output` and leave
/// with one system call per flush; a connection's own memory is only its
/// `SSL` (its record buffers are released while empty, `SSL_MODE_RELEASE_BUFFERS`,
/// into a list per loop thread: CTLSBuffers).
///
/// Loop thread only; every pointer here is valid for one SSL call.
package final class TLSLoop {
    /// Handshake steps (an `SSL_do_handshake` with new bytes) worked per loop
    /// iteration. A flood of new TLS connections costs a public-key operation
    /// each, so past this the rest wait for the next iteration and the
    /// established connections' reads of this one are not held up behind them.
    package static let handshakesPerIteration = 16

    /// The `BIO *`: the loop holds one reference, every `SSL` one more.
    let bio: OpaquePointer
    /// Where TLS connections' reads land (ciphertext).
    let input: UnsafeMutableRawBufferPointer
    /// The part of `input` OpenSSL has not read yet.
    @exclusivity(unchecked) var inputStart = 0
    @exclusivity(unchecked) var inputEnd = 0
    /// Records OpenSSL wrote during the current call, for `writer`.
    let output: UnsafeMutableRawPointer
    let outputCapacity = 128 * 1024
    @exclusivity(unchecked) var outputCount = 0
    /// Where `output` goes when it fills before the call ends; set before
    /// every SSL call, cleared when that connection closes.
    @exclusivity(unchecked) unowned(unsafe) var writer: AnyWebSocketConnection?
    /// The first record's worth of several plaintext pieces (a header and
    /// its payload) copied together, so that a header never makes a record
    /// of its own.
    let staging: UnsafeMutableRawBufferPointer
    /// TLS's largest record payload (RFC 8446 §5.1): 16 KiB.
    static let recordSize = 16 * 1024

    @exclusivity(unchecked) package var handshakeBudget = TLSLoop.handshakesPerIteration
    /// Connections whose handshake waits for a later iteration, oldest first;
    /// not counted (each removes itself when it closes).
    private var waiting: [Unmanaged<AnyWebSocketConnection>] = []
    private var waitingHead = 0
    private let resume: IterationHook

    init(loop: EventLoop) {
        input = .allocate(byteCount: 64 * 1024, alignment: 16)
        output = .allocate(byteCount: outputCapacity, alignment: 16)
        staging = .allocate(byteCount: TLSLoop.recordSize, alignment: 16)
        bio = BIO_new(TLSLoop.method)!
        resume = IterationHook(loop: loop, phase: .beforePoll)
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
        resume.start { [unowned self] in newIteration() }
        resume.unref()
    }

    /// Called by the loop context once its last user is gone, when every TLS
    /// connection has freed its `SSL` (and so its reference to the BIO).
    func close() {
        BIO_set_data(bio, nil)
        BIO_free(bio)
        resume.close()
        input.deallocate()
        output.deallocate()
        staging.deallocate()
    }

    // MARK: The handshake cap

    private func newIteration() {
        handshakeBudget = TLSLoop.handshakesPerIteration
        var resumed = 0
        while waitingHead < waiting.count && resumed < TLSLoop.handshakesPerIteration {
            let connection = waiting[waitingHead]
            waitingHead += 1
            resumed += 1
            connection._withUnsafeGuaranteedRef { $0.tls?.turnCame($0) }
        }
        if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
        }
    }

    func wait(_ connection: AnyWebSocketConnection) {
        waiting.append(Unmanaged.passUnretained(connection))
    }

    func stopWaiting(_ connection: AnyWebSocketConnection) {
        if let index = waiting[waitingHead...].firstIndex(where: { $0.toOpaque() == Unmanaged.passUnretained(connection).toOpaque() }) {
            waiting.remove(at: index)
        }
    }

    // MARK: Around an SSL call

    /// The ciphertext of one read, for the SSL calls that follow.
    func supply(_ count: Int) {
        inputStart = 0
        inputEnd = count
    }

    var inputLeft: Int { inputEnd - inputStart }

    /// Hands what OpenSSL wrote to `writer` (which writes it or queues a copy).
    func flush() {
        guard outputCount > 0 else { return }
        let count = outputCount
        outputCount = 0
        writer?.writeCiphertext(UnsafeRawBufferPointer(start: output, count: count))
    }

    // MARK: The BIO

    /// One method table for every loop's BIO, made on first use (Swift's lazy
    /// globals are thread-safe). Unchecked: filled in once inside that
    /// initialiser and only read after, by OpenSSL on each loop's thread.
    nonisolated(unsafe) private static let method: OpaquePointer = {
        let method = BIO_meth_new(BIO_get_new_index() | uvws_bio_type_source_sink(), "uvwebsocket loop")!
        BIO_meth_set_create(method) { bio in
            BIO_set_init(bio, 1)
            return 1
        }
        BIO_meth_set_read(method) { bio, data, length in
            uvws_bio_clear_retry_flags(bio)
            guard let owner = BIO_get_data(bio), let data, length > 0 else { return 0 }
            return Unmanaged<TLSLoop>.fromOpaque(owner)._withUnsafeGuaranteedRef { loop in
                let n = min(Int(length), loop.inputLeft)
                if n == 0 {
                    // Nothing more in this read: OpenSSL waits for the next.
                    uvws_bio_set_retry_read(bio)
                    return -1
                }
                UnsafeMutableRawPointer(data).copyMemory(from: loop.input.baseAddress! + loop.inputStart, byteCount: n)
                loop.inputStart += n
                return Int32(n)
            }
        }
        BIO_meth_set_write(method) { bio, data, length in
            uvws_bio_clear_retry_flags(bio)
            guard let owner = BIO_get_data(bio), let data, length > 0 else { return length == 0 ? 0 : -1 }
            Unmanaged<TLSLoop>.fromOpaque(owner)._withUnsafeGuaranteedRef { loop in
                let bytes = UnsafeRawBufferPointer(start: data, count: Int(length))
                if loop.outputCount + bytes.count > loop.outputCapacity { loop.flush() }
                if bytes.count > loop.outputCapacity {
                    loop.writer?.writeCiphertext(bytes)
                } else {
                    (loop.output + loop.outputCount).copyMemory(from: data, byteCount: bytes.count)
                    loop.outputCount += bytes.count
                }
            }
            // Always all of it: what the socket does not take is queued.
            return length
        }
        BIO_meth_set_ctrl(method) { _, command, _, _ in
            // OpenSSL flushes after each flight of handshake records; the
            // records are flushed after each call instead, so this only says yes.
            command == uvws_bio_ctrl_flush() ? 1 : 0
        }
        return method
    }()
}

extension LoopContext {
    /// The loop's TLS state, made by its first TLS connection.
    package var tls: TLSLoop {
        if let tlsLoop { return tlsLoop }
        let made = TLSLoop(loop: loop)
        tlsLoop = made
        return made
    }
}
