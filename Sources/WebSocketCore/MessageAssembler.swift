/// Joins the chunks of a message for code that wants whole messages.
///
/// A message that arrives in one chunk (the common case: one frame, one read)
/// is handed back as it is, without a copy. Only a message that spans frames or
/// reads is copied, into a buffer this assembler owns. The buffer is kept for
/// the next message unless it grew past `retainedCapacity`, so a burst of large
/// messages does not pin memory. The size limit is the parser's
/// `maxMessageSize` (1009 before any of it is buffered).
///
/// One pointer in every connection: the count and the capacity live in the
/// buffer's first 16 bytes, so a connection that never joined a message pays
/// 8 bytes for this, not 25.
///
/// Ownership: the caller calls `deallocate()` once. A returned view is valid
/// until the next `append` or `deallocate`.
public struct MessageAssembler {
    /// A buffer up to this size is kept between messages; a larger one is freed.
    public static let retainedCapacity = 64 * 1024
    @usableFromInline static let header = 16

    /// [count: Int][capacity: Int][bytes...], or nil.
    @usableFromInline var base: UnsafeMutableRawPointer?

    /// An assembler holding no memory.
    public init() {}

    /// Bytes of an unfinished message held so far.
    @inlinable public var bufferedCount: Int { base?.load(as: Int.self) ?? 0 }

    @inlinable var capacity: Int { base?.load(fromByteOffset: 8, as: Int.self) ?? 0 }

    /// A buffer grown past `retainedCapacity` that holds no message: the last
    /// message was joined in it and handed out, and the caller is done with
    /// it by the next call, which frees it.
    @inlinable var pendingRelease: Bool { bufferedCount == 0 && capacity > MessageAssembler.retainedCapacity }

    /// Adds a chunk. Returns the whole message with its final chunk, else nil.
    @inlinable
    public mutating func append(_ chunk: UnsafeRawBufferPointer, isFinal: Bool) -> UnsafeRawBufferPointer? {
        if isFinal && bufferedCount == 0 {
            if pendingRelease { release() }
            return chunk  // the whole message in one piece
        }
        let count = bufferedCount
        reserve(count + chunk.count)
        let bytes = base! + MessageAssembler.header
        if chunk.count > 0 { (bytes + count).copyMemory(from: chunk.baseAddress!, byteCount: chunk.count) }
        guard isFinal else {
            base!.storeBytes(of: count + chunk.count, as: Int.self)
            return nil
        }
        base!.storeBytes(of: 0, as: Int.self)
        return UnsafeRawBufferPointer(start: bytes, count: count + chunk.count)
    }

    @usableFromInline
    mutating func reserve(_ needed: Int) {
        if pendingRelease { release() }
        let capacity = self.capacity
        if needed <= capacity && base != nil { return }
        var newCapacity = max(capacity * 2, 1024)
        while newCapacity < needed { newCapacity *= 2 }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: MessageAssembler.header + newCapacity, alignment: 16)
        let count = bufferedCount
        if let old = base {
            if count > 0 {
                (grown + MessageAssembler.header).copyMemory(from: old + MessageAssembler.header, byteCount: count)
            }
            old.deallocate()
        }
        grown.storeBytes(of: count, as: Int.self)
        grown.storeBytes(of: newCapacity, toByteOffset: 8, as: Int.self)
        base = grown
    }

    @usableFromInline
    mutating func release() {
        base?.deallocate()
        base = nil
    }

    /// Frees what it holds.
    public mutating func deallocate() {
        release()
    }
}
