import CZlib

/// One zlib stream in raw deflate form (no zlib header or checksum, as
/// RFC 7692 §7.2 frames it). The `z_stream` lives at a fixed address, since
/// zlib keeps a pointer back to it. Loop thread only.
final class Inflater {
    let stream: UnsafeMutablePointer<z_stream>
    let windowBits: Int

    /// `windowBits` 9...15. (zlib inflates a window of 8 with 9: a larger
    /// window decodes any stream made with a smaller one.)
    init?(windowBits: Int) {
        self.windowBits = max(windowBits, 9)
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // Negative bits: raw deflate. zlib allocates the window itself, at the
        // first output, so a connection that never receives a compressed
        // message pays only for zlib's state.
        guard inflateInit2_(stream, -Int32(self.windowBits), ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            stream.deallocate()
            return nil
        }
    }

    /// Forgets the message in progress and the window: ready for a message
    /// compressed without context.
    func reset() { inflateReset(stream) }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }
}

final class Deflater {
    let stream: UnsafeMutablePointer<z_stream>
    let windowBits: Int

    /// `windowBits` 8...15. zlib (since 1.2.9) refuses raw deflate with a
    /// window of 8, so a window of 8 compresses with 9 and Huffman coding
    /// only: without back-references no distance exceeds any window, and a
    /// peer that allowed 256 bytes decodes it (RFC 7692 §7.1.2.1 holds).
    init?(windowBits: Int, level: Int, memoryLevel: Int) {
        self.windowBits = windowBits
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let strategy = windowBits < 9 ? Z_HUFFMAN_ONLY : Z_DEFAULT_STRATEGY
        guard deflateInit2_(stream, Int32(level), Z_DEFLATED, -Int32(max(windowBits, 9)), Int32(memoryLevel),
                            strategy, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            stream.deallocate()
            return nil
        }
    }

    func reset() { deflateReset(stream) }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }
}
