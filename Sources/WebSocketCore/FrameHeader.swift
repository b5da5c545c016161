/// A decoded frame header (RFC 6455 §5.2).
public struct FrameHeader: Sendable, Equatable {
    /// The frame ends its message.
    public var fin: Bool
    /// RSV1–RSV3 as the three low bits.
    public var rsv: UInt8
    /// The opcode as sent; reserved values are kept so the rules can reject them.
    public var opcode: Opcode
    /// The payload is masked (every client frame, RFC 6455 §5.3).
    public var masked: Bool
    /// The masking key in wire order, loaded little-endian (see `Masking`).
    public var maskKey: UInt32
    /// The payload's length in bytes.
    public var payloadLength: UInt64
    /// Bytes the header took on the wire: 2 to 14.
    public var headerLength: Int

    /// A header as parsed or as to be written.
    @inlinable
    public init(fin: Bool, rsv: UInt8, opcode: Opcode, masked: Bool, maskKey: UInt32, payloadLength: UInt64, headerLength: Int) {
        self.fin = fin; self.rsv = rsv; self.opcode = opcode; self.masked = masked
        self.maskKey = maskKey; self.payloadLength = payloadLength; self.headerLength = headerLength
    }

    /// The largest header: 2 fixed bytes, 8 length bytes, 4 key bytes.
    public static let maxLength = 14

    /// The header's size once its first two bytes are known (§5.2: 7-bit length,
    /// 126 for a 16-bit length, 127 for a 64-bit one; 4 more with the mask bit).
    @inlinable
    public static func length(firstTwoBytes b0: UInt8, _ b1: UInt8) -> Int {
        let len7 = b1 & 0x7F
        let extended = len7 == 126 ? 2 : (len7 == 127 ? 8 : 0)
        return 2 &+ extended &+ (b1 & 0x80 != 0 ? 4 : 0)
    }

    /// Decodes a header whose `length(firstTwoBytes:)` bytes are all at `p`.
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> FrameHeader {
        let b0 = p.load(as: UInt8.self)
        let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
        let len7 = b1 & 0x7F
        var offset = 2
        var length: UInt64
        if len7 == 126 {
            length = UInt64(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            offset = 4
        } else if len7 == 127 {
            length = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
            offset = 10
        } else {
            length = UInt64(len7)
        }
        let masked = b1 & 0x80 != 0
        var key: UInt32 = 0
        if masked {
            key = p.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            offset &+= 4
        }
        return FrameHeader(fin: b0 & 0x80 != 0, rsv: (b0 >> 4) & 0x7, opcode: Opcode(rawValue: b0), masked: masked,
                           maskKey: key, payloadLength: length, headerLength: offset)
    }
}
