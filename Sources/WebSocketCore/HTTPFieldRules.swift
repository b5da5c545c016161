/// What may stand in the header fields this end writes, so that a value from
/// options (a subprotocol, an origin, a client's extra header) can neither
/// break the head nor inject a field of its own (a CR or LF in it would).
public enum HTTPFieldRules {
    /// A token (RFC 9110 §5.6.2): one or more tchars.
    public static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy(HTTPHeadParser.isTokenChar)
    }

    /// A field value (RFC 9110 §5.5): visible characters, spaces and tabs
    /// (and bytes from 0x80, as received values are taken), no CR, LF or NUL.
    public static func isValidValue(_ s: String) -> Bool {
        s.utf8.allSatisfy { HTTPHeadParser.isVisible($0) || $0 == 0x20 || $0 == 0x09 || $0 >= 0x80 }
    }

    /// A whole field line `Name: value`, as a client's extra headers are given.
    public static func isValidFieldLine(_ line: String) -> Bool {
        var line = line
        return line.withUTF8 { HTTPHeadParser.parseField(UnsafeRawBufferPointer($0)) != nil }
    }
}

extension HTTPHeadLimits {
    /// The smallest head limit: a browser's upgrade request is about 500
    /// bytes, and below this even a minimal one would be refused.
    public static let minimumHeadSize = 256
    /// The largest: the head is read into a buffer of this connection's.
    public static let maximumHeadSize = 1 << 20

    /// Why these limits cannot work, or nil.
    public func validationError() -> String? {
        if maxHeadSize < Self.minimumHeadSize || maxHeadSize > Self.maximumHeadSize {
            return "maxHeadSize must be from \(Self.minimumHeadSize) to \(Self.maximumHeadSize), got \(maxHeadSize)"
        }
        // An upgrade request has at least Host, Upgrade, Connection,
        // Sec-WebSocket-Key and Sec-WebSocket-Version (RFC 6455 §4.1).
        if maxHeaderCount < 5 || maxHeaderCount > 10_000 {
            return "maxHeaderCount must be from 5 to 10000, got \(maxHeaderCount)"
        }
        return nil
    }
}
