import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// The calls on a connected `uv_tcp_t` that do not depend on who owns its
/// memory: a `TCPStream` (its own allocation) and a WebSocket connection
/// (the handle inside the connection's object) both make them through this.
/// A pointer and nothing else; valid while the handle's memory is, which
/// its owner keeps until the handle's close callback.
public struct TCPHandle {
    /// The handle, initialised by `uv_tcp_init`.
    public let raw: UnsafeMutablePointer<uv_tcp_t>

    /// Wraps a handle `uv_tcp_init` has initialised.
    @inlinable
    public init(_ raw: UnsafeMutablePointer<uv_tcp_t>) { self.raw = raw }

    /// The handle as libuv's stream type.
    @inlinable
    public var stream: UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(raw).assumingMemoryBound(to: uv_stream_t.self)
    }

    /// The handle as libuv's base handle type.
    @inlinable
    public var handle: UnsafeMutablePointer<uv_handle_t> {
        UnsafeMutableRawPointer(raw).assumingMemoryBound(to: uv_handle_t.self)
    }

    /// Takes the next pending connection of `listener`.
    public func accept(from listener: TCPListener) throws {
        let server = UnsafeMutableRawPointer(listener.tcp).assumingMemoryBound(to: uv_stream_t.self)
        try UVError.check(uv_accept(server, stream))
    }

    /// Takes a connected socket accepted on another loop (`duplicateDescriptor`):
    /// a libuv handle belongs to its loop, so the descriptor crosses, not the
    /// handle.
    public func open(descriptor: Int32) throws {
        try UVError.check(uv_tcp_open(raw, uv_os_sock_t(descriptor)))
    }

    /// A descriptor of this connected socket for another loop to `open`: a
    /// duplicate, since closing this handle closes its own. The caller closes
    /// this handle and owns the duplicate.
    public func duplicateDescriptor() throws -> Int32 {
        var fd = uv_os_fd_t()
        try UVError.check(uv_fileno(handle, &fd))
        // Close-on-exec like the original (libuv accepts with SOCK_CLOEXEC),
        // which a plain dup() would not carry over.
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        if copy < 0 { throw UVError(-errno) }
        return copy
    }

    /// Binds the socket to `source` before a connect (to spread many client
    /// connections over several loopback addresses).
    public func bind(to source: SocketAddress) throws {
        try UVError.check(source.withSockaddr { uv_tcp_bind(raw, $0, 0) })
    }

    /// Starts a connect to `address` with `request`, which the caller owns
    /// until `callback` runs (its `handle` is this one). A libuv status.
    public func connect(_ request: UnsafeMutablePointer<uv_connect_t>, to address: SocketAddress,
                        _ callback: uv_connect_cb) -> Int32 {
        address.withSockaddr { uv_tcp_connect(request, raw, $0, callback) }
    }

    /// Disables Nagle's algorithm: frames are corked by the caller already.
    public func setNoDelay(_ on: Bool) {
        uv_tcp_nodelay(raw, on ? 1 : 0)
    }

    /// The connected peer's address (for logs), or nil once it is gone.
    public func peerAddress() -> SocketAddress? {
        try? SocketAddress.filled { uv_tcp_getpeername(raw, $0, $1) }
    }

    /// Queues `bytes` for writing with a request from `loop`'s pool;
    /// `callback` runs once they are written or failed (the request's
    /// `handle` is this one; the callback gives the request back with
    /// `EventLoop.returnWriteRequest`). The bytes must stay valid and
    /// unchanged until then. Throws, with the request back in the pool, when
    /// libuv refuses.
    public func queueWrite(_ bytes: UnsafeRawBufferPointer, on loop: EventLoop, _ callback: uv_write_cb) throws {
        let request = loop.takeWriteRequest()
        var buf = uv_buf_init(UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: CChar.self)), UInt32(bytes.count))
        let rc = uv_write(request, stream, &buf, 1, callback)
        if rc < 0 {
            loop.returnWriteRequest(request)
            throw UVError(rc)
        }
    }

    // MARK: Writing without queueing

    /// Writes what the kernel takes now of `count` pieces, in order, with one
    /// `send`/`sendmsg` on the handle's socket: the bytes written, 0 when the
    /// socket buffer is full; throws on a real error. The pieces are
    /// `IOPiece`s, laid out as `struct iovec`, so they pass without a copy.
    /// The caller makes sure no queued write (`uv_write`) is pending: it
    /// would have to go first, as `uv_try_write` has it.
    ///
    /// Not `uv_try_write`, which does the same with `write`/`writev`: on a
    /// socket those pass through the VFS layer (`vfs_write`, `fdget_pos`),
    /// 6.8% of the server's time on the fan-out benchmark against 5% for the
    /// socket calls (perf, side by side). The handle stays libuv's: its loop
    /// polls it, and queued writes still go through `uv_write`.
    @inlinable
    public func trySend(pieces: UnsafePointer<IOPiece>, count: Int) throws -> Int {
        if count == 1 { return try trySend(pieces.pointee.base, pieces.pointee.length) }
        if count == 0 { return 0 }
        var message = msghdr()
        message.msg_iov = UnsafeMutablePointer(mutating: UnsafeRawPointer(pieces).assumingMemoryBound(to: iovec.self))
        message.msg_iovlen = min(count, 1024)  // Linux's IOV_MAX
        let fd = stream.pointee.io_watcher.fd
        while true {
            let written = sendmsg(fd, &message, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if written >= 0 { return written }
            if try !TCPHandle.sendFailed() { return 0 }
        }
    }

    /// Up to three pieces in order (empty ones skipped at the end).
    @inlinable
    public func trySend(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ c: UnsafeRawBufferPointer) throws -> Int {
        if b.count == 0 && c.count == 0 { return try trySend(a.baseAddress, a.count) }
        var pieces = (IOPiece(base: a.baseAddress, length: a.count), IOPiece(base: b.baseAddress, length: b.count),
                      IOPiece(base: c.baseAddress, length: c.count))
        let n = c.count > 0 ? 3 : 2
        return try withUnsafePointer(to: &pieces) {
            try trySend(pieces: UnsafeRawPointer($0).assumingMemoryBound(to: IOPiece.self), count: n)
        }
    }

    /// One piece: `send`, the shortest way in.
    @inlinable
    public func trySend(_ base: UnsafeRawPointer?, _ count: Int) throws -> Int {
        let fd = stream.pointee.io_watcher.fd
        while true {
            let written = send(fd, base, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if written >= 0 { return written }
            if try !TCPHandle.sendFailed() { return 0 }
        }
    }

    /// After a failed send: true to try again (EINTR), false when the socket
    /// buffer is full, or throws the error.
    @usableFromInline @inline(never)
    static func sendFailed() throws -> Bool {
        let code = errno
        if code == EINTR { return true }
        if code == EAGAIN || code == EWOULDBLOCK || code == ENOBUFS { return false }
        throw UVError(-code)
    }
}
