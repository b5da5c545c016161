/// A fixed-capacity byte ring: the server's receive buffer (one per loop, sized
/// by `receiveBufferSize`), and the small one that keeps a connection's partial
/// frame header or control frame until its next read.
///
/// The socket reader writes straight into `writableRegion` (libuv's alloc
/// callback hands it out) and the frame parser reads and unmasks frames in place.
/// Nothing is copied between the socket and the handler.
///
/// Ownership: a `ByteRing` is a value that refers to memory it allocated; exactly
/// one owner calls `deallocate()` (the server, or its pool of small rings). Pointers taken from it
/// stay valid until the bytes are consumed or the ring is written again.
///
/// The storage has `spillCapacity` bytes past the end. When a frame header or a
/// control frame wraps around the end, `contiguousBytes` copies the wrapped part
/// there, so the parser always sees such small pieces in one piece.
public struct ByteRing {
    /// Bytes past the ring's end reserved for making a wrapped piece contiguous:
    /// enough for a 14-byte header plus a 125-byte control payload (RFC 6455 §5.5).
    public static let spillCapacity = 160
    /// The smallest ring that can always make progress: it must hold a whole
    /// control frame with the largest header.
    public static let minimumCapacity = 256

    /// Its size in bytes (a power of two).
    public let capacity: Int
    @usableFromInline let mask: Int
    /// The bytes; owned by the ring until `deallocate()`.
    public let storage: UnsafeMutableRawPointer
    /// Offset of the first readable byte.
    @usableFromInline var head: Int = 0
    /// Readable bytes.
    @usableFromInline var readable: Int = 0
    /// Bytes to read.
    @inlinable public var count: Int { readable }

    /// The smallest valid capacity that holds `n` bytes.
    public static func capacity(atLeast n: Int) -> Int {
        var c = minimumCapacity
        while c < n { c <<= 1 }
        return c
    }

    /// `capacity` must be a power of two, at least `minimumCapacity`.
    public init(capacity: Int) {
        precondition(capacity >= ByteRing.minimumCapacity && capacity & (capacity - 1) == 0,
                     "ring capacity must be a power of two >= \(ByteRing.minimumCapacity)")
        self.capacity = capacity
        self.mask = capacity - 1
        self.storage = UnsafeMutableRawPointer.allocate(byteCount: capacity + ByteRing.spillCapacity, alignment: 16)
    }

    /// Frees the storage; the ring must not be used after.
    public func deallocate() { storage.deallocate() }

    /// Drops every readable byte.
    @inlinable
    public mutating func reset() {
        head = 0
        readable = 0
    }

    /// No byte to read.
    @inlinable public var isEmpty: Bool { count == 0 }
    /// No room to write.
    @inlinable public var isFull: Bool { count == capacity }
    /// Bytes that can still be written.
    @inlinable public var freeCount: Int { capacity &- count }

    /// The largest contiguous free region, where the next read may land.
    @inlinable
    public var writableRegion: UnsafeMutableRawBufferPointer {
        let tail = (head &+ count) & mask
        let length: Int
        if count == capacity {
            length = 0
        } else if tail >= head {
            length = capacity &- tail  // free space runs to the end (and then wraps)
        } else {
            length = head &- tail
        }
        return UnsafeMutableRawBufferPointer(start: storage + tail, count: length)
    }

    /// Marks `n` bytes of `writableRegion` as written.
    @inlinable
    public mutating func commitWrite(_ n: Int) {
        precondition(n >= 0 && n <= freeCount)
        readable &+= n
    }

    /// Copies bytes in (used for bytes that arrived before the ring existed, such
    /// as a frame sent in the same segment as the upgrade request). Returns the
    /// number copied, which is less than asked when the ring fills.
    @discardableResult
    public mutating func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        var done = 0
        while done < bytes.count {
            let region = writableRegion
            if region.count == 0 { break }
            let n = min(region.count, bytes.count - done)
            region.baseAddress!.copyMemory(from: bytes.baseAddress! + done, byteCount: n)
            commitWrite(n)
            done += n
        }
        return done
    }

    /// Moves the readable bytes to the end of `other`, as many as it has room
    /// for, and returns how many moved.
    @discardableResult
    public mutating func move(to other: inout ByteRing) -> Int {
        var moved = 0
        while !isEmpty {
            let (p, n) = contiguousReadable(from: 0)
            let taken = other.write(UnsafeRawBufferPointer(start: p, count: n))
            consume(taken)
            moved += taken
            if taken < n { break }
        }
        return moved
    }

    /// Drops `n` readable bytes from the front. An empty ring restarts at offset 0
    /// so the next read gets the whole buffer in one piece.
    @inlinable
    public mutating func consume(_ n: Int) {
        precondition(n >= 0 && n <= count)
        readable &-= n
        head = readable == 0 ? 0 : (head &+ n) & mask
    }

    /// Readable bytes from `offset` on that sit in one piece before the wrap point.
    @inlinable
    public func contiguousReadable(from offset: Int) -> (pointer: UnsafeMutableRawPointer, count: Int) {
        let start = (head &+ offset) & mask
        let untilEnd = capacity &- start
        let left = count &- offset
        return (storage + start, left < untilEnd ? left : untilEnd)
    }

    /// A pointer to `length` readable bytes from `offset`, in one piece. When they
    /// wrap, the wrapped part is copied into the spill area past the end. The
    /// pointer is valid until the ring is next written or consumed.
    @inlinable
    public func contiguousBytes(from offset: Int, length: Int) -> UnsafeMutableRawPointer {
        precondition(offset + length <= count && length <= ByteRing.spillCapacity)
        let start = (head &+ offset) & mask
        let overflow = start &+ length &- capacity
        if overflow > 0 {
            (storage + capacity).copyMemory(from: storage, byteCount: overflow)
        }
        return storage + start
    }

    /// Byte at `offset` from the first readable byte.
    @inlinable
    public func byte(at offset: Int) -> UInt8 {
        storage.load(fromByteOffset: (head &+ offset) & mask, as: UInt8.self)
    }
}
