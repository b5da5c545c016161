import CLibUV

/// A libuv error, carrying libuv's own name and message for it.
public struct UVError: Error, Equatable, CustomStringConvertible, Sendable {
    /// libuv's (negative) error code.
    public let code: Int32

    public init(_ code: Int32) { self.code = code }

    public var name: String { String(cString: uv_err_name(code)) }
    public var message: String { String(cString: uv_strerror(code)) }
    public var description: String { "\(name): \(message)" }

    /// Throws for a negative libuv return value.
    @inlinable
    public static func check(_ result: Int32) throws {
        if result < 0 { throw UVError(result) }
    }

    // The errors callers act on, by name (never by number: they differ by OS).
    public static let endOfFile = UVError(UV_EOF.rawValue)
    public static let wouldBlock = UVError(UV_EAGAIN.rawValue)
    public static let cancelled = UVError(UV_ECANCELED.rawValue)
    public static let noBuffers = UVError(UV_ENOBUFS.rawValue)
    public static let connectionReset = UVError(UV_ECONNRESET.rawValue)
    public static let brokenPipe = UVError(UV_EPIPE.rawValue)
    public static let addressInUse = UVError(UV_EADDRINUSE.rawValue)
    public static let busy = UVError(UV_EBUSY.rawValue)
    public static let connectionRefused = UVError(UV_ECONNREFUSED.rawValue)
    public static let timedOut = UVError(UV_ETIMEDOUT.rawValue)
}
