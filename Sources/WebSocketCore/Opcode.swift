/// A frame's opcode (RFC 6455 §5.2): the low four bits of its first byte.
///
/// A struct over the wire value, as SwiftNIO's `WebSocketOpcode` is, not an
/// enum: a received frame's opcode is taken as it stands, with no failable
/// conversion per frame, and the reserved values (3–7, 11–15) are
/// representable so that `FrameRules` can refuse them with 1002.
public struct Opcode: RawRepresentable, Hashable, Sendable {
    /// The wire value, 0 to 15.
    public let rawValue: UInt8

    /// The opcode in the low four bits of `rawValue` (the rest are ignored,
    /// so a frame's first byte can be passed as it is after its flags).
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue & 0x0F }

    /// A later frame of a fragmented message (§5.4).
    public static let continuation = Opcode(rawValue: 0x0)
    /// The first frame of a text message (UTF-8).
    public static let text = Opcode(rawValue: 0x1)
    /// The first frame of a binary message.
    public static let binary = Opcode(rawValue: 0x2)
    /// A close frame (§5.5.1).
    public static let close = Opcode(rawValue: 0x8)
    /// A ping (§5.5.2): the peer answers with a pong.
    public static let ping = Opcode(rawValue: 0x9)
    /// A pong (§5.5.3), answering a ping or unsolicited.
    public static let pong = Opcode(rawValue: 0xA)

    /// Control frames have the high opcode bit set (RFC 6455 §5.5).
    @inlinable public var isControl: Bool { rawValue & 0x8 != 0 }
    /// Text or binary: the opcodes that begin a message.
    @inlinable public var beginsMessage: Bool { rawValue &- 1 < 2 }
}

/// The type of a data message, as ASP.NET's `WebSocketMessageType` names it.
public enum MessageType: UInt8, Sendable {
    case text = 0x1
    case binary = 0x2

    /// The opcode of a message of this type's first frame.
    @inlinable public var opcode: Opcode { Opcode(rawValue: rawValue) }
}

/// Which end of the connection this code speaks for. It decides the masking rule
/// (RFC 6455 §5.1): a client masks every frame it sends, a server masks none.
public enum Role: Sendable {
    case server
    case client
}
