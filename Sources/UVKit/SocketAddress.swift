import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address and port, as libuv takes them.
public struct SocketAddress: Sendable, CustomStringConvertible {
    /// The address as the kernel takes it (IPv4 or IPv6).
    public private(set) var storage = sockaddr_storage()

    /// Parses a numeric address ("127.0.0.1", "::1"); "localhost" means 127.0.0.1.
    /// Throws `UVError` EINVAL for a port outside 0...65535 or a host that is
    /// not a numeric address.
    public init(host: String, port: Int) throws {
        guard (0...65535).contains(port) else { throw UVError(-22) }
        let literal = host == "localhost" ? "127.0.0.1" : host
        var s = sockaddr_storage()
        let rc: Int32
        if literal.contains(":") {
            rc = withUnsafeMutableBytes(of: &s) { uv_ip6_addr(literal, Int32(port), $0.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)) }
        } else {
            rc = withUnsafeMutableBytes(of: &s) { uv_ip4_addr(literal, Int32(port), $0.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)) }
        }
        try UVError.check(rc)
        storage = s
    }

    /// Whether `host` is an IPv4 or IPv6 address rather than a name.
    public static func isNumeric(_ host: String) -> Bool {
        var buffer = in6_addr()
        return inet_pton(AF_INET, host, &buffer) == 1 || inet_pton(AF_INET6, host, &buffer) == 1
    }

    init(storage: sockaddr_storage) { self.storage = storage }

    /// An address libuv writes (`uv_tcp_getsockname`, `uv_tcp_getpeername`).
    static func filled(by query: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<Int32>) -> Int32) throws(UVError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutableBytes(of: &storage) { query($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length) }
        if rc < 0 { throw UVError(rc) }
        return SocketAddress(storage: storage)
    }

    /// The port, in host byte order.
    public var port: Int {
        withUnsafeBytes(of: storage) { raw in
            let family = raw.load(as: sa_family_t.self)
            if family == sa_family_t(AF_INET6) {
                return Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
            }
            return Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
        }
    }

    /// "127.0.0.1:5000", "[::1]:5000".
    public var description: String {
        var name = [CChar](repeating: 0, count: 64)
        let isIPv6 = withUnsafeBytes(of: storage) { $0.load(as: sa_family_t.self) } == sa_family_t(AF_INET6)
        withUnsafeBytes(of: storage) { raw in
            if isIPv6 {
                _ = uv_ip6_name(raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self), &name, name.count)
            } else {
                _ = uv_ip4_name(raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self), &name, name.count)
            }
        }
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>) -> R) -> R {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self)) }
    }
}
