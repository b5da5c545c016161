import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket. `onConnection` runs on the loop thread for each
/// pending connection; it accepts with `TCPStream.accept(from:)`.
public final class TCPListener: UVHandle {
    private var onConnection: ((UVError?) -> Void)?

    /// A TCP listener on `loop`, not yet bound.
    public init(loop: EventLoop) {
        let memory = UnsafeMutablePointer<uv_tcp_t>.allocate(capacity: 1)
        uv_tcp_init(loop.raw, memory)
        super.init(loop: loop, memory: memory)
    }

    var tcp: UnsafeMutablePointer<uv_tcp_t> {
        UnsafeMutableRawPointer(rawHandle).assumingMemoryBound(to: uv_tcp_t.self)
    }

    /// Binds the socket. With `reusePort`, several loops (threads or processes)
    /// can listen on one port and the kernel spreads connections between them;
    /// libuv 1.44 has no flag for it, so SO_REUSEPORT is set on the socket here.
    public func bind(_ address: SocketAddress, reusePort: Bool = false) throws {
        if reusePort {
            // Open the socket ourselves so the option is set before bind().
            let family = address.withSockaddr { Int32($0.pointee.sa_family) }
            let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
            if fd < 0 { throw UVError(-errno) }
            var one: Int32 = 1
            if setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
                let error = UVError(-errno)
                Glibc.close(fd)
                throw error
            }
            let rc = uv_tcp_open(tcp, uv_os_sock_t(fd))
            if rc < 0 {
                Glibc.close(fd)
                throw UVError(rc)
            }
        }
        try UVError.check(address.withSockaddr { uv_tcp_bind(tcp, $0, 0) })
    }

    /// Starts listening; `onConnection` runs on the loop thread for each pending connection (accept
    /// it with `TCPStream.accept(from:)`).
    public func listen(backlog: Int32 = 1024, _ onConnection: @escaping (UVError?) -> Void) throws {
        self.onConnection = onConnection
        let stream = UnsafeMutableRawPointer(tcp).assumingMemoryBound(to: uv_stream_t.self)
        try UVError.check(uv_listen(stream, backlog) { server, status in
            let owner = Unmanaged<TCPListener>.fromOpaque(server!.pointee.data).takeUnretainedValue()
            owner.onConnection?(status < 0 ? UVError(status) : nil)
        })
    }

    /// The bound address (its port, when bound to port 0).
    public func localAddress() throws -> SocketAddress {
        try SocketAddress.filled { uv_tcp_getsockname(tcp, $0, $1) }
    }

    /// Lets go of the callback once the handle is closed.
    public override func didClose() { onConnection = nil }
}
