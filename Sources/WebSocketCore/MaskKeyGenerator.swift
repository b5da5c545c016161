import CLibCrypto

/// Fresh masking keys for the client role. RFC 6455 §10.3 asks that a key be
/// unpredictable, so keys come from OpenSSL's CSPRNG; they are drawn 1 KiB at a
/// time so a key costs a load, not a system call.
///
/// Owns one buffer, allocated at init and freed by `deallocate()`.
public struct MaskKeyGenerator {
    @usableFromInline static let batch = 1024
    @usableFromInline let buffer: UnsafeMutableRawPointer
    @usableFromInline var offset: Int

    /// A generator with its 1 KiB buffer (free it with `deallocate()`).
    public init() {
        buffer = UnsafeMutableRawPointer.allocate(byteCount: MaskKeyGenerator.batch, alignment: 8)
        offset = MaskKeyGenerator.batch
    }

    /// Frees the buffer; the generator must not be used after.
    public func deallocate() { buffer.deallocate() }

    /// The next masking key, unpredictable (RFC 6455 §10.3).
    @inlinable
    public mutating func next() -> UInt32 {
        if offset == MaskKeyGenerator.batch { refill() }
        let key = buffer.load(fromByteOffset: offset, as: UInt32.self)
        offset &+= 4
        return key
    }

    @usableFromInline
    mutating func refill() {
        let ok = RAND_bytes(buffer.assumingMemoryBound(to: UInt8.self), Int32(MaskKeyGenerator.batch))
        precondition(ok == 1, "OpenSSL RAND_bytes failed")
        offset = 0
    }
}
