#if canImport(Glibc)
import Glibc
#endif

/// The HTTP head being read (a request on a server, the 101 on a client). One
/// pointer in the connection: its count and capacity live in the buffer's own
/// first 16 bytes, so a connection past its handshake (with the buffer freed)
/// pays 8 bytes for it, not 24.
struct HeadBuffer {
    private var base: UnsafeMutableRawPointer?
    private static let header = 16

    var isAllocated: Bool { base != nil }
    /// Bytes read so far.
    private(set) var count: Int {
        get { base?.load(as: Int.self) ?? 0 }
        nonmutating set { base?.storeBytes(of: newValue, as: Int.self) }
    }
    private var capacity: Int { base?.load(fromByteOffset: 8, as: Int.self) ?? 0 }
    private var bytes: UnsafeMutableRawPointer? { base.map { $0 + HeadBuffer.header } }

    /// Room for the next read: 1 KiB at first (a browser's upgrade request is
    /// about 500 bytes), doubled up to `limit`; empty once the limit is full.
    mutating func room(limit: Int) -> UnsafeMutableRawBufferPointer {
        if base == nil {
            allocate(capacity: min(1024, limit), copying: 0)
        } else if count == capacity && capacity < limit {
            allocate(capacity: min(capacity * 2, limit), copying: count)
        }
        return UnsafeMutableRawBufferPointer(start: bytes! + count, count: capacity - count)
    }

    private mutating func allocate(capacity: Int, copying kept: Int) {
        let grown = UnsafeMutableRawPointer.allocate(byteCount: HeadBuffer.header + capacity, alignment: 8)
        if let old = base {
            (grown + HeadBuffer.header).copyMemory(from: old + HeadBuffer.header, byteCount: kept)
            old.deallocate()
        }
        grown.storeBytes(of: kept, as: Int.self)
        grown.storeBytes(of: capacity, toByteOffset: 8, as: Int.self)
        base = grown
    }

    /// `n` more bytes landed in the room last given.
    func commit(_ n: Int) { count += n }

    /// The bytes from `offset` on (valid until the buffer grows or is freed).
    func view(from offset: Int = 0) -> UnsafeRawBufferPointer {
        guard let bytes, offset < count else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: bytes + offset, count: count - offset)
    }

    /// Drops the first `n` bytes (a request answered), moving the rest (the
    /// next pipelined requests) to the front.
    func consume(_ n: Int) {
        guard let bytes else { return }
        let rest = count - min(n, count)
        if rest > 0 { memmove(bytes, bytes + (count - rest), rest) }  // the two may overlap
        count = rest
    }

    mutating func free() {
        base?.deallocate()
        base = nil
    }
}
