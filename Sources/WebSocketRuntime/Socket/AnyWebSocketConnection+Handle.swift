import CLibUV
import UVKit
import WebSocketCore
#if canImport(Glibc)
import Glibc
#endif

/// libuv's side of the object: the handle's callbacks land here, directly
/// (`handle.data` is this object, unretained: it holds itself until the
/// close callback), and each is a direct call on this final, non-generic code.
///
/// Buffers: a read lands where `readBuffer()` says (the head buffer, the
/// loop's ring, or with TLS the loop's ciphertext input); a queued write's
/// bytes are the queue's in-flight buffer, unchanged until its callback.
/// libuv calls every queued write's callback, with `UV_ECANCELED` if the
/// handle closes first, and always before the close callback.
extension AnyWebSocketConnection {
    /// The object a handle's `data` points at, lent without a retain: it
    /// holds itself until the close callback, which comes after every other.
    @inline(__always)
    static func owner(of handle: UnsafeMutableRawPointer) -> Unmanaged<AnyWebSocketConnection> {
        Unmanaged.fromOpaque(handle.assumingMemoryBound(to: uv_handle_t.self).pointee.data)
    }

    // MARK: Starting

    /// Server role: takes the listener's next pending connection and reads its request.
    package final func accept(from listener: TCPListener) throws {
        try handle.accept(from: listener)
        try readRequest()
    }

    /// Server role: takes a connection another loop accepted (its descriptor,
    /// which this connection owns from here, failed or not) and reads its request.
    package final func adopt(descriptor: Int32) throws {
        do { try handle.open(descriptor: descriptor) } catch {
            Glibc.close(descriptor)
            throw error
        }
        try readRequest()
    }

    /// A server's connected socket: reading starts, timed by the handshake timeout.
    private func readRequest() throws {
        handle.setNoDelay(true)
        try startReading()
        scheduleDeadline()
    }

    /// Client role: connects; `connectFinished` reports the end.
    package final func connect(to address: SocketAddress, from source: SocketAddress?, request: ClientHandshakeState) throws {
        clientHandshake = request
        if let source { try handle.bind(to: source) }
        let connect = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        let rc = handle.connect(connect, to: address) { request, status in
            let owner = AnyWebSocketConnection.owner(of: UnsafeMutableRawPointer(request!.pointee.handle!))
            request!.deallocate()
            owner._withUnsafeGuaranteedRef { $0.tcpConnected(status < 0 ? UVError(status) : nil) }
        }
        if rc < 0 {
            connect.deallocate()
            throw UVError(rc)
        }
        scheduleDeadline()
    }

    /// The TCP connect ended. With TLS the handshake goes first and the HTTP
    /// request after it (`TLSCodec` calls `didConnect` then).
    private func tcpConnected(_ error: UVError?) {
        if error == nil { handle.setNoDelay(true) }
        if error == nil, let tls {
            tls.start(on: self)
            return
        }
        didConnect(error)
    }

    /// The connection is up (TCP, and TLS if any): reading starts and the
    /// client's request goes out.
    final func didConnect(_ error: UVError?) {
        if error == nil {
            do { try startReading() } catch {
                connectFinished(error as? UVError ?? UVError(-1))
                return
            }
            if var request = clientHandshake?.request {
                request.withUTF8 { sendRaw(UnsafeRawBufferPointer($0)) }
            }
        }
        connectFinished(error)
    }

    // MARK: Reading

    /// Starts reading: `readBuffer()` then `didRead` for each read, until
    /// `stopReading` or the end.
    final func startReading() throws {
        if isReading || isClosing { return }
        try UVError.check(uv_read_start(handle.stream, { handle, _, buf in
            let region = AnyWebSocketConnection.owner(of: handle!)._withUnsafeGuaranteedRef { $0.readBuffer() }
            buf!.pointee = uv_buf_init(region.baseAddress?.assumingMemoryBound(to: CChar.self), UInt32(region.count))
        }, { handle, nread, _ in
            AnyWebSocketConnection.owner(of: handle!)._withUnsafeGuaranteedRef { owner in
                if nread >= 0 {
                    // 0 is EAGAIN: nothing arrived, and it is not end of file.
                    owner.didRead(nread)
                } else if Int32(nread) == UV_ENOBUFS.rawValue {
                    owner.didRunOutOfReadBuffer()
                } else {
                    owner.connectionLost()
                }
            }
        }))
        isReading = true
    }

    /// Stops reading; bytes wait in the kernel until reading starts again.
    final func stopReading() {
        if !isReading { return }
        uv_read_stop(handle.stream)
        isReading = false
    }

    /// Where the next read lands: TLS's ciphertext input, else where the
    /// protocol reads (`plainReadBuffer`).
    @inline(__always)
    final func readBuffer() -> UnsafeMutableRawBufferPointer {
        if let tls { return tls.readBuffer() }
        return plainReadBuffer()
    }

    /// `count` bytes landed in the buffer `readBuffer()` gave (0: none this time).
    @inline(__always)
    final func didRead(_ count: Int) {
        if let tls { return tls.didRead(count, on: self) }
        plainDidRead(count)
    }

    /// `readBuffer()` gave no room: only the HTTP head can fill its buffer
    /// (the head parser answers 431 first), a full ring means a peer reading
    /// stopped for anyway, and TLS's handshake cap holds this one back.
    final func didRunOutOfReadBuffer() {
        stopReading()
        tls?.heldBack(self)
    }

    // MARK: Queued writes

    /// Queues `bytes`, which stay valid and unchanged until `didCompleteWrite`.
    final func queueWrite(_ bytes: UnsafeRawBufferPointer) throws {
        try handle.queueWrite(bytes, on: contextRef._withUnsafeGuaranteedRef { $0.loop }) { request, status in
            AnyWebSocketConnection.owner(of: UnsafeMutableRawPointer(request!.pointee.handle!))._withUnsafeGuaranteedRef { owner in
                owner.contextRef._withUnsafeGuaranteedRef { $0.loop.returnWriteRequest(request!) }
                owner.writesInFlight -= 1
                owner.didCompleteWrite(status < 0 ? UVError(status) : nil)
            }
        }
        writesInFlight += 1
    }

    /// Sends FIN once queued writes are out (`uv_shutdown`); reading goes on.
    final func shutdownWriting() {
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        let rc = uv_shutdown(request, handle.stream) { request, status in
            let owner = AnyWebSocketConnection.owner(of: UnsafeMutableRawPointer(request!.pointee.handle!))
            request!.deallocate()
            if status < 0 { owner._withUnsafeGuaranteedRef { $0.closeHandle() } }
        }
        if rc < 0 {
            request.deallocate()
            closeHandle()
        }
    }

    // MARK: Closing

    /// Closes the handle now; `handleDidClose` follows in a later iteration.
    final func closeHandle() {
        endReadingHold()
        writesClosed = true
        contextRef._withUnsafeGuaranteedRef { context in
            context.forgetCork(self)
            context.wheel.cancel(slot)
        }
        stopReading()
        if isClosing { return }
        isClosing = true
        uv_close(handle.handle) { handle in
            let owner = AnyWebSocketConnection.owner(of: handle!)
            // Held (from `init`) until the end of this call: the object is the
            // handle's memory, freed when the last reference goes.
            owner.takeUnretainedValue().handleDidClose()
            owner.release()
        }
    }

    /// The handle's close callback: the last event. The TLS session, the
    /// queue and the slot go; the protocol's side reports what is left to
    /// report and lets go of its owner's share.
    private func handleDidClose() {
        endReadingHold()
        tls?.free(from: self)
        tls = nil
        outbound.deallocate()
        contextRef._withUnsafeGuaranteedRef { $0.freeSlot(slot) }
        connectionDidClose()
    }

    /// The peer's address, asked of the socket (for logs; not kept).
    package final var peerAddress: SocketAddress? { isClosing ? nil : handle.peerAddress() }
}
