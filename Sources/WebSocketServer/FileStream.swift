#if canImport(Glibc)
import Glibc
#endif
import UVKit
import WebSocketRuntime

/// One HTTP request's response and where it stands: the connection it goes
/// to, the head it answers (its length, to drop it from the connection's
/// buffer) and whether the connection stays open after it.
struct HTTPExchange<Handler: WebSocketHandler> {
    let connection: WebSocketConnection<Handler>
    let headLength: Int
    let keepAlive: Bool
    /// HTTP/1.0 keeps a connection only when told so in the response.
    let isHTTP10: Bool
    let headOnly: Bool

    /// The response is out (or queued): the connection takes its next
    /// request, or closes (as it does once a shutdown began, whatever the
    /// response's head said: the client then sees the close and retries
    /// elsewhere, RFC 9112 §9.6).
    func finish(shuttingDown: Bool) {
        connection.finishHTTPResponse(headLength: headLength, keepAlive: keepAlive && !shuttingDown)
    }
}

/// A response that waits for its connection's queue: a body read from disk
/// a piece at a time (a piece is read on the thread pool, sent, and the next
/// read starts once the kernel took it, so a large file to a slow reader
/// holds one piece of memory, not the file), or a response queued past the
/// backpressure limit, whose connection takes no next request until it
/// leaves.
///
/// Owned by its `FileResponder` until it ends; the descriptor is its own and
/// closed when it ends, however it ends. Closing a regular file does not
/// block, so that is done on the loop thread.
final class FileStream<Handler: WebSocketHandler> {
    static var pieceSize: Int { 64 * 1024 }

    let exchange: HTTPExchange<Handler>
    private var descriptor: Int32
    private var offset: Int
    private var remaining: Int
    private var buffer: UnsafeMutableRawBufferPointer?
    /// Written by the pool thread, read by the loop in the completion.
    private var lastRead = 0
    private var reading = false
    private var ended = false
    // Held: a read may complete after the server let go of its responder.
    private let responder: FileResponder<Handler>

    /// Streams `range` of `descriptor`, or (`descriptor` -1) only waits for
    /// the queue to drain before the exchange finishes.
    init(_ exchange: HTTPExchange<Handler>, descriptor: Int32, range: Range<Int>, responder: FileResponder<Handler>) {
        self.exchange = exchange
        self.descriptor = descriptor
        offset = range.lowerBound
        remaining = range.count
        self.responder = responder
    }

    /// Goes on with the response: the next piece, or the end once the queue is empty.
    func proceed() {
        guard !ended, !reading else { return }
        guard exchange.connection.isInHTTPPhase else { return end(finishing: false) }
        if exchange.connection.notifyWhenHTTPQueueDrains() { return }
        if remaining == 0 { return end(finishing: true) }
        readNextPiece()
    }

    private func readNextPiece() {
        let size = min(remaining, Self.pieceSize)
        let piece = buffer ?? UnsafeMutableRawBufferPointer.allocate(byteCount: Self.pieceSize, alignment: 16)
        buffer = piece
        reading = true
        let fd = descriptor, at = offset
        ThreadPoolWork.run(on: responder.loop, { [self] in
            var n: Int
            repeat { n = pread(fd, piece.baseAddress, size, off_t(at)) } while n < 0 && errno == EINTR
            lastRead = n
        }, then: { [self] in
            reading = false
            pieceWasRead(piece)
        })
    }

    private func pieceWasRead(_ piece: UnsafeMutableRawBufferPointer) {
        if ended { return release() }
        guard exchange.connection.isInHTTPPhase else { return end(finishing: false) }
        guard lastRead > 0 else {
            // The file shrank (or failed) after its head promised a length:
            // the response cannot be completed, so the connection ends.
            exchange.connection.abortHTTP()
            return end(finishing: false)
        }
        let n = min(lastRead, remaining)
        offset += n
        remaining -= n
        exchange.connection.sendHTTP(UnsafeRawBufferPointer(rebasing: piece[..<n]))
        proceed()
    }

    /// The connection is gone (or the server stops): let go of the file now,
    /// or when the read under way returns.
    func cancel() {
        if ended { return }
        ended = true
        if !reading { release() }
    }

    private func end(finishing: Bool) {
        ended = true
        release()
        responder.streamEnded(self)
        if finishing { exchange.finish(shuttingDown: responder.shuttingDown) }
    }

    private func release() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        buffer?.deallocate()
        buffer = nil
    }
}
