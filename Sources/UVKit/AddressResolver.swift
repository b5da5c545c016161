import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// Name resolution on the loop (`uv_getaddrinfo`, which runs getaddrinfo on
/// libuv's thread pool): a host name or address and a port to the addresses
/// to try, in the resolver's order. The callback runs on the loop thread.
public enum AddressResolver {
    private final class Request {
        let callback: (Result<[SocketAddress], UVError>) -> Void
        init(_ callback: @escaping (Result<[SocketAddress], UVError>) -> Void) { self.callback = callback }
    }

    /// Resolves `host` (`getaddrinfo` on libuv's thread pool) and calls `callback` on the loop
    /// thread with its addresses, or the error.
    public static func resolve(_ host: String, port: Int, on loop: EventLoop,
                               _ callback: @escaping (Result<[SocketAddress], UVError>) -> Void) {
        let request = UnsafeMutablePointer<uv_getaddrinfo_t>.allocate(capacity: 1)
        // The request object is held by the libuv request until its callback.
        request.pointee.data = Unmanaged.passRetained(Request(callback)).toOpaque()
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        let rc = uv_getaddrinfo(loop.raw, request, { request, status, result in
            let owner = Unmanaged<Request>.fromOpaque(request!.pointee.data).takeRetainedValue()
            request!.deallocate()
            if status < 0 {
                owner.callback(.failure(UVError(status)))
                return
            }
            let addresses = AddressResolver.socketAddresses(result)
            uv_freeaddrinfo(result)
            owner.callback(.success(addresses))
        }, host, String(port), &hints)
        if rc < 0 {
            Unmanaged<Request>.fromOpaque(request.pointee.data).release()
            request.deallocate()
            callback(.failure(UVError(rc)))
        }
    }

    /// The same, blocking the calling thread: for start-up (a server's listen
    /// address), where there is nothing else for the loop to do meanwhile.
    public static func resolveNow(_ host: String, port: Int, on loop: EventLoop) throws(UVError) -> [SocketAddress] {
        var request = uv_getaddrinfo_t()
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        // With no callback libuv resolves synchronously and leaves the result
        // in the request.
        let rc = uv_getaddrinfo(loop.raw, &request, nil, host, String(port), &hints)
        if rc < 0 { throw UVError(rc) }
        defer { uv_freeaddrinfo(request.addrinfo) }
        return socketAddresses(request.addrinfo)
    }

    fileprivate static func socketAddresses(_ list: UnsafeMutablePointer<addrinfo>?) -> [SocketAddress] {
        var addresses: [SocketAddress] = []
        var entry = list
        while let info = entry {
            if let addr = info.pointee.ai_addr, info.pointee.ai_addrlen <= MemoryLayout<sockaddr_storage>.size {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) {
                    $0.baseAddress!.copyMemory(from: addr, byteCount: Int(info.pointee.ai_addrlen))
                }
                addresses.append(SocketAddress(storage: storage))
            }
            entry = info.pointee.ai_next
        }
        return addresses
    }
}
