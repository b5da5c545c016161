import CLibUV

/// A libuv error, carrying libuv's own name and message for it.
public struct UVError: Error, Equatable, CustomStringConvertible, Sendable {
    /// libuv's (negative) error code.
    public let code: Int32

    /// The error of libuv's negative status `code`.
    public init(_ code: Int32) { self.code = code }

    /// libuv's name for it (`ECONNRESET`).
    public var name: String { String(cString: uv_err_name(code)) }
    /// libuv's description of it.
    public var message: String { String(cString: uv_strerror(code)) }
    /// Name and description: "ECONNRESET: connection reset by peer".
    public var description: String { "\(name): \(message)" }

    /// Throws for a negative libuv return value.
    @inlinable
    public static func check(_ result: Int32) throws {
        if result < 0 { throw UVError(result) }
    }

    // The errors callers act on, by name (never by number: they differ by OS).
    /// The peer closed its side (a read's end).
    public static let endOfFile = UVError(UV_EOF.rawValue)
    /// The kernel takes nothing now (a try-write).
    public static let wouldBlock = UVError(UV_EAGAIN.rawValue)
    /// The request was cancelled (its handle closed).
    public static let cancelled = UVError(UV_ECANCELED.rawValue)
    /// A read got no buffer to land in.
    public static let noBuffers = UVError(UV_ENOBUFS.rawValue)
    /// The peer reset the connection.
    public static let connectionReset = UVError(UV_ECONNRESET.rawValue)
    /// A write to a connection the peer has closed.
    public static let brokenPipe = UVError(UV_EPIPE.rawValue)
    /// The address is taken (`listen`).
    public static let addressInUse = UVError(UV_EADDRINUSE.rawValue)
    /// A handle is still open (`EventLoop.close`).
    public static let busy = UVError(UV_EBUSY.rawValue)
    /// Nothing listens at the address (`connect`).
    public static let connectionRefused = UVError(UV_ECONNREFUSED.rawValue)
    /// The connect or read timed out.
    public static let timedOut = UVError(UV_ETIMEDOUT.rawValue)
}
