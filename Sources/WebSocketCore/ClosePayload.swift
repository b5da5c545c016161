/// Why a close frame's payload was refused, and the code to fail with.
public struct ClosePayloadError: Error, Sendable {
    /// The code the payload carries.
    public let code: CloseCode
    /// A close body with `code` and no reason.
    @inlinable public init(code: CloseCode) { self.code = code }
}

/// The close frame body (RFC 6455 §5.5.1): empty, or a 2-byte big-endian code
/// followed by a UTF-8 reason; 125 bytes at most in all.
public enum ClosePayload {
    /// The longest reason that fits a control frame.
    public static let maxReasonLength = 123

    /// Splits and validates a received close payload. An empty payload means no
    /// code was sent (reported as 1005). A 1-byte payload or a code that may not
    /// appear on the wire is 1002; a reason that is not UTF-8 is 1007.
    @inlinable
    public static func parse(_ payload: UnsafeRawBufferPointer)
        -> Result<(CloseCode, UnsafeRawBufferPointer), ClosePayloadError> {
        if payload.count == 0 { return .success((.noStatusReceived, UnsafeRawBufferPointer(start: nil, count: 0))) }
        if payload.count == 1 { return .failure(ClosePayloadError(code: .protocolError)) }
        let code = CloseCode(UInt16(payload[0]) << 8 | UInt16(payload[1]))
        if !code.isValidOnWire { return .failure(ClosePayloadError(code: .protocolError)) }
        let reason = UnsafeRawBufferPointer(rebasing: payload[2...])
        var utf8 = UTF8Validator()
        if !utf8.validate(reason) || !utf8.isComplete { return .failure(ClosePayloadError(code: .invalidPayloadData)) }
        return .success((code, reason))
    }

    /// Writes a close body into `p` (at least 125 bytes) and returns its length.
    /// 1005 and 1006 never go on the wire: they produce an empty body. The reason
    /// is cut to fit, at a code point boundary so it stays valid UTF-8.
    @inlinable
    public static func write(code: CloseCode, reason: UnsafeRawBufferPointer, into p: UnsafeMutableRawPointer) -> Int {
        if code == .noStatusReceived || code == .abnormalClosure { return 0 }
        p.storeBytes(of: UInt16(code.rawValue).bigEndian, as: UInt16.self)
        var length = min(reason.count, maxReasonLength)
        if length < reason.count {
            // Back off continuation bytes (10xxxxxx) so no code point is split.
            while length > 0 && reason[length] & 0xC0 == 0x80 { length -= 1 }
        }
        if length > 0 { (p + 2).copyMemory(from: reason.baseAddress!, byteCount: length) }
        return 2 + length
    }
}
