import CZlib

/// What the permessage-deflate connections of one loop share: the streams for
/// messages sent or received without context takeover, and the buffers zlib
/// writes into. A connection borrows a stream for one message and gives it
/// back, reset, when the message ends, so an idle connection holds none, and
/// a message that spans reads keeps its stream while others borrow another.
///
/// Owned by the endpoint's negotiator; every connection's extension holds it.
/// Loop thread only.
public final class DeflatePool {
    let level: Int
    let memoryLevel: Int
    private var inflaters: [Inflater] = []
    /// By window bits (8...15): every compressor in a list makes the same output.
    private var deflaters: [[Deflater]] = Array(repeating: [], count: 16)

    /// Decoded bytes, one step at a time: a compressed bomb costs one step of
    /// output before the size limit sees it (RFC 7692 §8.1's concern).
    static let inflateStep = 16 * 1024
    /// Encoded bytes, one frame's worth at a time.
    static let deflateStep = 64 * 1024
    private var inflateStorage: UnsafeMutableRawBufferPointer?
    private var deflateStorage: UnsafeMutableRawBufferPointer?
    /// A broadcast's compressed message, built once for every peer; grows to
    /// the largest one and stays.
    private var wholeStorage: UnsafeMutableRawBufferPointer?

    /// A pool for one loop whose deflaters compress at `level` (0-9) with `memoryLevel` (1-9).
    public init(level: Int, memoryLevel: Int) {
        self.level = level
        self.memoryLevel = memoryLevel
    }

    func borrowInflater() -> Inflater? {
        inflaters.popLast() ?? Inflater(windowBits: 15)
    }

    func giveBack(_ inflater: Inflater) {
        inflater.reset()
        inflaters.append(inflater)
    }

    /// A shared compressor keeps no context, so memoryLevel 8 costs nothing per
    /// connection and compresses better than the small levels a per-connection
    /// one would use.
    func borrowDeflater(windowBits: Int) -> Deflater? {
        deflaters[windowBits].popLast() ?? Deflater(windowBits: windowBits, level: level, memoryLevel: 8)
    }

    func giveBack(_ deflater: Deflater) {
        deflater.reset()
        deflaters[deflater.windowBits].append(deflater)
    }

    /// The streams waiting to be lent (tests check that they come back).
    var idleStreams: (inflaters: Int, deflaters: Int) {
        (inflaters.count, deflaters.reduce(0) { $0 + $1.count })
    }

    /// Allocated at the first compressed message, not before.
    var inflateBuffer: UnsafeMutableRawBufferPointer {
        if let buffer = inflateStorage { return buffer }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.inflateStep, alignment: 16)
        inflateStorage = buffer
        return buffer
    }

    var deflateBuffer: UnsafeMutableRawBufferPointer {
        if let buffer = deflateStorage { return buffer }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.deflateStep, alignment: 16)
        deflateStorage = buffer
        return buffer
    }

    /// Compresses a whole message with a stream borrowed for it (§7.2.1: sync
    /// flush, the 4-byte tail removed). Valid until the next call.
    func compressWhole(_ payload: UnsafeRawBufferPointer, windowBits: Int) -> UnsafeRawBufferPointer? {
        guard let deflater = borrowDeflater(windowBits: windowBits) else { return nil }
        defer { giveBack(deflater) }
        let stream = deflater.stream
        // deflateBound covers the stored-block worst case; the flush adds at most 10.
        let bound = Int(deflateBound(stream, UInt(payload.count))) + 16
        if (wholeStorage?.count ?? 0) < bound {
            wholeStorage?.deallocate()
            wholeStorage = .allocate(byteCount: bound, alignment: 16)
        }
        let out = wholeStorage!
        stream.pointee.next_in = UnsafeMutablePointer(mutating: payload.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = UInt32(payload.count)
        stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = UInt32(out.count)
        let rc = deflate(stream, Z_SYNC_FLUSH)
        let total = out.count - Int(stream.pointee.avail_out)
        guard rc == Z_OK, stream.pointee.avail_in == 0, total >= 4 else { return nil }
        return UnsafeRawBufferPointer(start: out.baseAddress, count: total - 4)
    }

    deinit {
        inflateStorage?.deallocate()
        deflateStorage?.deallocate()
        wholeStorage?.deallocate()
    }
}
