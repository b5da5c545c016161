/// The sending half of RFC 6455 framing: writes headers into a small scratch
/// area so the payload can go out by reference (a second `iovec`), or copies and
/// masks it when the role requires masking.
public enum FrameWriter {
    /// Header size for a payload of `length` bytes (§5.2).
    @inlinable
    public static func headerLength(payloadLength length: Int, masked: Bool) -> Int {
        (length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)) &+ (masked ? 4 : 0)
    }

    /// Writes a frame header at `p`, which must have `FrameHeader.maxLength`
    /// bytes. With a `maskKey` the mask bit is set and the key written; the
    /// caller masks the payload. `rsv` holds RSV1–RSV3 as its three low bits
    /// (a negotiated extension's marks, RFC 6455 §5.2). Returns the header length.
    @inlinable
    @discardableResult
    public static func writeHeader(into p: UnsafeMutableRawPointer, opcode: Opcode, fin: Bool, rsv: UInt8 = 0,
                                   payloadLength length: Int, maskKey: UInt32? = nil) -> Int {
        let first: UInt8 = (fin ? 0x80 : 0) | (rsv & 0x7) << 4 | opcode.rawValue
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        var offset: Int
        if length < 126 {
            // Both bytes in one store: the common frame of small messages.
            let second = maskBit | UInt8(truncatingIfNeeded: length)
            p.storeBytes(of: (UInt16(first) | UInt16(second) &<< 8).littleEndian, as: UInt16.self)
            offset = 2
        } else if length <= 0xFFFF {
            p.storeBytes(of: first, as: UInt8.self)
            p.storeBytes(of: maskBit | 126, toByteOffset: 1, as: UInt8.self)
            (p + 2).storeBytes(of: UInt16(truncatingIfNeeded: length).bigEndian, as: UInt16.self)
            offset = 4
        } else {
            p.storeBytes(of: first, as: UInt8.self)
            p.storeBytes(of: maskBit | 127, toByteOffset: 1, as: UInt8.self)
            (p + 2).storeBytes(of: UInt64(truncatingIfNeeded: length).bigEndian, as: UInt64.self)
            offset = 10
        }
        if let key = maskKey {
            (p + offset).storeBytes(of: key, as: UInt32.self)
            offset &+= 4
        }
        return offset
    }

    /// A frame header built on the stack, for a payload that goes out by
    /// reference (a second `iovec`) or is queued after it. The view is valid
    /// only inside `body`.
    @inlinable @inline(__always)
    public static func withHeader<R>(opcode: Opcode, fin: Bool, rsv: UInt8 = 0, payloadLength: Int, maskKey: UInt32? = nil,
                                     _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var header = (UInt64(0), UInt64(0))  // 16 bytes: room for the largest, 14
        return withUnsafeMutableBytes(of: &header) { raw in
            let n = writeHeader(into: raw.baseAddress!, opcode: opcode, fin: fin, rsv: rsv,
                                payloadLength: payloadLength, maskKey: maskKey)
            return body(UnsafeRawBufferPointer(start: raw.baseAddress!, count: n))
        }
    }

    /// Writes a whole frame, header and payload, at `p` (which must have
    /// `headerLength + payload.count` bytes), masking the copy when a key is given.
    /// Returns the frame length.
    @inlinable
    @discardableResult
    public static func writeFrame(into p: UnsafeMutableRawPointer, opcode: Opcode, fin: Bool, rsv: UInt8 = 0,
                                  payload: UnsafeRawBufferPointer, maskKey: UInt32? = nil) -> Int {
        let h = writeHeader(into: p, opcode: opcode, fin: fin, rsv: rsv, payloadLength: payload.count, maskKey: maskKey)
        if payload.count > 0 {
            copy(payload.baseAddress!, to: p + h, count: payload.count)
            if let key = maskKey { Masking.apply(key: key, phase: 0, to: p + h, count: payload.count) }
        }
        return h &+ payload.count
    }

    /// Copies a payload into the cork. Up to 32 bytes (chat lines, ticks,
    /// acknowledgements) with two overlapping loads and stores, in registers:
    /// a call to `memmove` costs more than the copy there, and makes the
    /// caller save its registers around it (callgrind: about 20 instructions
    /// per 16 B message).
    @inlinable @inline(__always)
    static func copy(_ source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, count: Int) {
        if count >= 8 && count <= 16 {
            let head = source.loadUnaligned(as: UInt64.self)
            let tail = source.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            destination.storeBytes(of: head, as: UInt64.self)
            destination.storeBytes(of: tail, toByteOffset: count &- 8, as: UInt64.self)
        } else if count > 16 && count <= 32 {
            let head = source.loadUnaligned(as: SIMD16<UInt8>.self)
            let tail = source.loadUnaligned(fromByteOffset: count &- 16, as: SIMD16<UInt8>.self)
            destination.storeBytes(of: head, as: SIMD16<UInt8>.self)
            destination.storeBytes(of: tail, toByteOffset: count &- 16, as: SIMD16<UInt8>.self)
        } else {
            destination.copyMemory(from: source, byteCount: count)
        }
    }
}
