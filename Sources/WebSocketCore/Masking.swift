/// Payload masking (RFC 6455 §5.3): byte i of the payload is XORed with byte
/// (i mod 4) of the 4-byte key. A payload may be processed in several pieces (the
/// ring wraps, or a frame arrives over several reads), so the caller carries the
/// key phase, the index within the key of the next byte, from piece to piece.
public enum Masking {
    /// XORs `count` bytes at `bytes` in place with `key`, starting at key byte
    /// `phase` (0...3). Returns the phase for the byte after the last one.
    ///
    /// `key` holds the four key bytes in wire order, loaded from memory as a
    /// little-endian `UInt32` (so wire byte 0 is the low byte).
    @inlinable
    @discardableResult
    public static func apply(key: UInt32, phase: Int, to bytes: UnsafeMutableRawPointer, count: Int) -> Int {
        if count == 0 { return phase }
        // Rotate the key so that its first byte is the one this piece starts with.
        let shift = UInt32(truncatingIfNeeded: (phase & 3) &* 8)
        let k32 = shift == 0 ? key : (key >> shift) | (key << (32 &- shift))
        let k64 = UInt64(k32) | (UInt64(k32) << 32)
        var p = bytes
        var left = count
        // Four words per round: the loop the compiler keeps in registers.
        while left >= 32 {
            p.storeBytes(of: p.loadUnaligned(as: UInt64.self) ^ k64, as: UInt64.self)
            (p + 8).storeBytes(of: (p + 8).loadUnaligned(as: UInt64.self) ^ k64, as: UInt64.self)
            (p + 16).storeBytes(of: (p + 16).loadUnaligned(as: UInt64.self) ^ k64, as: UInt64.self)
            (p + 24).storeBytes(of: (p + 24).loadUnaligned(as: UInt64.self) ^ k64, as: UInt64.self)
            p += 32
            left &-= 32
        }
        while left >= 8 {
            p.storeBytes(of: p.loadUnaligned(as: UInt64.self) ^ k64, as: UInt64.self)
            p += 8
            left &-= 8
        }
        var k = k32
        while left > 0 {
            p.storeBytes(of: p.load(as: UInt8.self) ^ UInt8(truncatingIfNeeded: k), as: UInt8.self)
            k = (k >> 8) | (k << 24)
            p += 1
            left &-= 1
        }
        return (phase &+ count) & 3
    }

    /// The byte-wise definition from §5.3, kept as the reference the fast path is
    /// tested against.
    public static func applyReference(key: UInt32, phase: Int, to bytes: UnsafeMutableRawPointer, count: Int) -> Int {
        for i in 0..<count {
            let keyByte = UInt8(truncatingIfNeeded: key >> UInt32(((phase + i) & 3) * 8))
            bytes.storeBytes(of: bytes.load(fromByteOffset: i, as: UInt8.self) ^ keyByte, toByteOffset: i, as: UInt8.self)
        }
        return (phase + count) & 3
    }
}
