import CMasking

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
        // Large payloads are unmasked out of line, with vectors (below).
        if count >= vectorThreshold { return applyVectors(key: key, phase: phase, to: bytes, count: count) }
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

    /// From this size on, payloads are unmasked by `applyVectors`: a call out
    /// of the parser, worth it once the vectors have enough to do.
    @inlinable public static var vectorThreshold: Int { 256 }

    /// 16-byte vectors, four per round (SSE2 on any x86-64, NEON on arm64),
    /// and from 512 bytes C's `uvws_mask`, which uses AVX2 where the CPU has
    /// it (Swift cannot choose a CPU feature at run time). A 64 KiB payload,
    /// in L2 after the kernel's copy, is unmasked in about 60% of the time of
    /// 64-bit words. The key repeats every 4 bytes, so a vector holds it 4 times.
    @usableFromInline @inline(never)
    static func applyVectors(key: UInt32, phase: Int, to bytes: UnsafeMutableRawPointer, count: Int) -> Int {
        let shift = UInt32(truncatingIfNeeded: (phase & 3) &* 8)
        let k32 = shift == 0 ? key : (key >> shift) | (key << (32 &- shift))
        if count >= 512 {
            uvws_mask(bytes, count, k32)
            return (phase &+ count) & 3
        }
        let k128 = SIMD2<UInt64>(repeating: UInt64(k32) | (UInt64(k32) << 32))
        var p = bytes
        var left = count
        while left >= 64 {
            p.storeBytes(of: p.loadUnaligned(as: SIMD2<UInt64>.self) ^ k128, as: SIMD2<UInt64>.self)
            (p + 16).storeBytes(of: (p + 16).loadUnaligned(as: SIMD2<UInt64>.self) ^ k128, as: SIMD2<UInt64>.self)
            (p + 32).storeBytes(of: (p + 32).loadUnaligned(as: SIMD2<UInt64>.self) ^ k128, as: SIMD2<UInt64>.self)
            (p + 48).storeBytes(of: (p + 48).loadUnaligned(as: SIMD2<UInt64>.self) ^ k128, as: SIMD2<UInt64>.self)
            p += 64
            left &-= 64
        }
        // Under 64 bytes left, at the same phase (64 is a multiple of 4):
        // the word loop of `apply`.
        apply(key: key, phase: phase, to: p, count: left)
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
