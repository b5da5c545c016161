/// Frame opcodes (RFC 6455 §5.2). Values 3–7 and 11–15 are reserved and fail the
/// connection with 1002; they are never represented here.
public enum Opcode: UInt8, Sendable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    /// Control frames have the high opcode bit set (RFC 6455 §5.5).
    @inlinable public var isControl: Bool { rawValue & 0x8 != 0 }
    /// The same test on a wire value, before it is known to be defined.
    @inlinable public static func isControl(_ wire: UInt8) -> Bool { wire & 0x8 != 0 }
}

/// The type of a data message, as ASP.NET's `WebSocketMessageType` names it.
public enum MessageType: UInt8, Sendable {
    case text = 0x1
    case binary = 0x2

    /// The opcode of a message of this type's first frame.
    @inlinable public var opcode: Opcode { self == .text ? .text : .binary }
}

/// Which end of the connection this code speaks for. It decides the masking rule
/// (RFC 6455 §5.1): a client masks every frame it sends, a server masks none.
public enum Role: Sendable {
    case server
    case client
}
