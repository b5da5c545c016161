import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// A connected TCP socket. Subclasses receive its events by overriding the
/// `open` methods: a class call, resolved through the vtable, with no closure
/// and no existential on the read path.
///
/// Buffers: the subclass hands out the memory each read lands in
/// (`readBuffer()`), and keeps the memory of a queued `write` valid until
/// `didCompleteWrite` is called for it. libuv calls that callback for every
/// queued write, with `UVError.cancelled` if the handle closes first, and always
/// before `didClose()`.
open class TCPStream: UVHandle {
    /// Whether reads are started (`startReading`) and not stopped.
    @exclusivity(unchecked) public private(set) var isReading = false
    /// Queued writes whose callbacks have not run yet. 32 bits, so that it
    /// packs beside the flags in every stream.
    @exclusivity(unchecked) public private(set) var writesInFlight: Int32 = 0

    /// A TCP handle on `loop`, not yet connected or accepted.
    public init(loop: EventLoop) {
        let memory = UnsafeMutablePointer<uv_tcp_t>.allocate(capacity: 1)
        uv_tcp_init(loop.raw, memory)
        super.init(loop: loop, memory: memory)
    }

    var stream: UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(rawHandle).assumingMemoryBound(to: uv_stream_t.self)
    }

    var tcp: UnsafeMutablePointer<uv_tcp_t> {
        UnsafeMutableRawPointer(rawHandle).assumingMemoryBound(to: uv_tcp_t.self)
    }

    /// The calls that do not depend on who owns the handle.
    public var handle: TCPHandle { TCPHandle(tcp) }

    // MARK: Connection set-up

    /// Takes the next pending connection of `listener`.
    public func accept(from listener: TCPListener) throws { try handle.accept(from: listener) }

    /// Connects to `address`, from `source` if given (to spread many client
    /// connections over several loopback addresses). `didConnect` reports the end.
    public func connect(to address: SocketAddress, from source: SocketAddress? = nil) throws {
        if let source { try handle.bind(to: source) }
        let request = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        let rc = handle.connect(request, to: address) { request, status in
            let owner = UVHandle.owner(of: request!.pointee.handle, as: TCPStream.self)
            request!.deallocate()
            owner?.takeUnretainedValue().didConnect(status < 0 ? UVError(status) : nil)
        }
        if rc < 0 {
            request.deallocate()
            throw UVError(rc)
        }
    }

    /// Disables Nagle's algorithm.
    public func setNoDelay(_ on: Bool) { handle.setNoDelay(on) }

    // MARK: Reading

    /// Starts reading: `readBuffer()` then `didRead` for each read, until `stopReading` or the end.
    public func startReading() throws {
        if isReading || isClosing { return }
        // The owner is lent to these callbacks without a retain: whoever holds it
        // while the handle is open (or close(), until the close callback) keeps
        // it alive past the callback, and a retain and release per read is
        // measurable on the per-message path.
        try UVError.check(uv_read_start(stream, { handle, _, buf in
            let region = Unmanaged<TCPStream>.fromOpaque(handle!.pointee.data)._withUnsafeGuaranteedRef { $0.readBuffer() }
            buf!.pointee = uv_buf_init(region.baseAddress?.assumingMemoryBound(to: CChar.self), UInt32(region.count))
        }, { handle, nread, _ in
            Unmanaged<TCPStream>.fromOpaque(handle!.pointee.data)._withUnsafeGuaranteedRef { owner in
                if nread >= 0 {
                    // 0 is EAGAIN: nothing arrived, and it is not end of file.
                    owner.didRead(nread)
                } else if Int32(nread) == UV_ENOBUFS.rawValue {
                    owner.didRunOutOfReadBuffer()
                } else {
                    owner.didReachEnd(Int32(nread) == UV_EOF.rawValue ? nil : UVError(Int32(nread)))
                }
            }
        }))
        isReading = true
    }

    /// Stops reading; bytes wait in the kernel until reading starts again.
    public func stopReading() {
        if !isReading { return }
        uv_read_stop(stream)
        isReading = false
    }

    /// Where the next read may land. An empty buffer makes libuv report
    /// `didRunOutOfReadBuffer()` instead of reading.
    open func readBuffer() -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: nil, count: 0) }

    /// `count` bytes landed in the buffer `readBuffer()` gave (0: none this time).
    open func didRead(_ count: Int) {}

    /// `readBuffer()` gave no room. By default reading stops.
    open func didRunOutOfReadBuffer() { stopReading() }

    /// The peer closed its side (nil) or the connection failed.
    open func didReachEnd(_ error: UVError?) {}

    /// The connect started by `connect(to:from:)` ended (nil: connected). For subclasses.
    open func didConnect(_ error: UVError?) {}

    // MARK: Writing

    /// Writes what the kernel takes now, without queueing, from up to three
    /// pieces in order (`TCPHandle.trySend`). Returns the bytes written (0
    /// when the socket buffer is full, or while a queued write is pending)
    /// or throws on a real error.
    public func tryWrite(_ a: UnsafeRawBufferPointer,
                         _ b: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                         _ c: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) throws -> Int {
        if writesInFlight > 0 { return 0 }
        return try handle.trySend(a, b, c)
    }

    /// Queues `bytes` for writing. They must stay valid and unchanged until
    /// `didCompleteWrite` runs for this write.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try handle.queueWrite(bytes, on: loop) { request, status in
            guard let owner = UVHandle.owner(of: request!.pointee.handle, as: TCPStream.self)?.takeUnretainedValue() else {
                request!.deallocate()
                return
            }
            owner.loop.returnWriteRequest(request!)
            owner.writesInFlight -= 1
            owner.didCompleteWrite(status < 0 ? UVError(status) : nil)
        }
        writesInFlight += 1
    }

    /// A queued write (`write`) completed, or failed with `error`. For subclasses.
    open func didCompleteWrite(_ error: UVError?) {}

    /// Sends FIN once queued writes are out (`uv_shutdown`); reading goes on.
    public func shutdown() {
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        let rc = uv_shutdown(request, stream) { request, status in
            let owner = UVHandle.owner(of: request!.pointee.handle, as: TCPStream.self)
            request!.deallocate()
            owner?.takeUnretainedValue().didShutdown(status < 0 ? UVError(status) : nil)
        }
        if rc < 0 {
            request.deallocate()
            didShutdown(UVError(rc))
        }
    }

    /// The shutdown of the write side (FIN) completed. For subclasses.
    open func didShutdown(_ error: UVError?) {}

    /// The connected peer's address (for logs), or nil once it is gone.
    public func peerAddress() -> SocketAddress? { handle.peerAddress() }
}

/// One piece of a gathered write: where and how many bytes, laid out as
/// libuv's `uv_buf_t` on Linux (a pointer, then a length), so that an array
/// of them is a `writev`'s vector as it stands.
public struct IOPiece {
    /// Where the piece begins (valid until the write that takes it returns).
    public var base: UnsafeRawPointer?
    /// Its length in bytes.
    public var length: Int

    /// A piece of a gathered write.
    public init(base: UnsafeRawPointer?, length: Int) {
        self.base = base
        self.length = length
    }

    /// True when the layouts agree (checked by a test).
    public static var matchesLibuv: Bool {
        MemoryLayout<IOPiece>.size == MemoryLayout<uv_buf_t>.size
            && MemoryLayout<uv_buf_t>.offset(of: \uv_buf_t.base) == 0
            && MemoryLayout<uv_buf_t>.offset(of: \uv_buf_t.len) == MemoryLayout<UnsafeRawPointer?>.size
    }
}
