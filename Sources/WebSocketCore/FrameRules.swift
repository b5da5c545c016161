/// Every rule a received frame header must satisfy, in one place, apart from the
/// byte-level decoding. Returns the close code to fail the connection with, or nil.
public enum FrameRules {
    /// - Parameters:
    ///   - header: the decoded header.
    ///   - role: this end's role: a server requires masked frames, a client unmasked ones (§5.1).
    ///   - allowedRSV: the RSV bits a negotiated extension defines (none: 0).
    ///   - messageInProgress: a fragmented data message has begun and not ended.
    @inlinable @inline(__always)
    public static func violation(of header: FrameHeader, role: Role, allowedRSV: UInt8,
                                 messageInProgress: Bool) -> CloseCode? {
        // §5.2: RSV bits must be 0 unless an extension defining them was negotiated.
        if header.rsv & ~allowedRSV != 0 { return .protocolError }
        // §5.1: a server must close on an unmasked frame, a client on a masked one.
        if header.masked != (role == .server) { return .protocolError }
        // §5.2: a 64-bit length must have its most significant bit clear.
        if header.payloadLength & (1 << 63) != 0 { return .protocolError }
        switch header.opcode {
        case .continuation:
            // §5.4: a continuation needs a message to continue.
            if !messageInProgress { return .protocolError }
            // Extensions here are per message (RFC 7692 §6.1): their bits mark the
            // first frame only, never a continuation.
            if header.rsv != 0 { return .protocolError }
        case .text, .binary:
            // §5.4: a new data frame may not interleave with an open fragmented message.
            if messageInProgress { return .protocolError }
        case .close, .ping, .pong:
            // §5.5: control frames are at most 125 bytes and never fragmented.
            if header.payloadLength > 125 || !header.fin { return .protocolError }
            // RFC 7692 §6.1: a per-message extension never marks a control frame.
            if header.rsv != 0 { return .protocolError }
        default:
            // §5.2: opcodes 3–7 and 11–15 are reserved.
            return .protocolError
        }
        return nil
    }
}
