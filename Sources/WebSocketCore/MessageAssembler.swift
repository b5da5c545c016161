/// Joins the chunks of a message for code that wants whole messages.
///
/// A message that arrives in one chunk (the common case: one frame, one read)
/// is handed back as it is, without a copy. Only a message that spans frames or
/// reads is copied, into a buffer this assembler owns. The buffer is kept for
/// the next message unless it grew past `retainedCapacity`, so a burst of large
/// messages does not pin memory. The size limit is the parser's
/// `maxMessageSize` (1009 before any of it is buffered).
///
/// Ownership: the caller calls `deallocate()` once. A returned view is valid
/// until the next `append` or `deallocate`.
public struct MessageAssembler {
    public static let retainedCapacity = 64 * 1024

    @usableFromInline var buffer: UnsafeMutableRawPointer?
    @usableFromInline var count = 0
    @usableFromInline var capacity = 0

    public init() {}

    /// Bytes of an unfinished message held so far.
    public var bufferedCount: Int { count }

    /// Adds a chunk. Returns the whole message with its final chunk, else nil.
    @inlinable
    public mutating func append(_ chunk: UnsafeRawBufferPointer, isFinal: Bool) -> UnsafeRawBufferPointer? {
        if isFinal && count == 0 {
            if pendingRelease { release() }
            return chunk  // the whole message in one piece
        }
        reserve(count + chunk.count)
        if chunk.count > 0 { (buffer! + count).copyMemory(from: chunk.baseAddress!, byteCount: chunk.count) }
        count += chunk.count
        guard isFinal else { return nil }
        let message = UnsafeRawBufferPointer(start: buffer, count: count)
        count = 0
        if capacity > MessageAssembler.retainedCapacity { pendingRelease = true }
        return message
    }

    /// Set when the buffer grew past `retainedCapacity`: it is freed on the next
    /// call, once the caller is done with the message it points to.
    @usableFromInline var pendingRelease = false

    @usableFromInline
    mutating func reserve(_ needed: Int) {
        if pendingRelease { release() }
        if needed <= capacity && buffer != nil { return }
        var newCapacity = max(capacity * 2, 1024)
        while newCapacity < needed { newCapacity *= 2 }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if let old = buffer {
            if count > 0 { grown.copyMemory(from: old, byteCount: count) }
            old.deallocate()
        }
        buffer = grown
        capacity = newCapacity
    }

    @usableFromInline
    mutating func release() {
        pendingRelease = false
        buffer?.deallocate()
        buffer = nil
        capacity = 0
    }

    public mutating func deallocate() {
        buffer?.deallocate()
        buffer = nil
        count = 0
        capacity = 0
        pendingRelease = false
    }
}
