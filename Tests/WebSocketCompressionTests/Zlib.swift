import CZlib
import Testing

struct ZlibError: Error { let code: Int32 }

/// Inflates raw deflate data in one go, as an independent decoder would.
func rawInflate(_ input: [UInt8], windowBits: Int32) throws -> [UInt8] {
    var stream = z_stream()
    guard inflateInit2_(&stream, -windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw ZlibError(code: -1)
    }
    defer { inflateEnd(&stream) }
    var input = input
    var output = [UInt8](repeating: 0, count: 1 << 22)
    let produced = try input.withUnsafeMutableBufferPointer { inBuffer in
        try output.withUnsafeMutableBufferPointer { outBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = UInt32(inBuffer.count)
            stream.next_out = outBuffer.baseAddress
            stream.avail_out = UInt32(outBuffer.count)
            let rc = inflate(&stream, Z_SYNC_FLUSH)
            guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else { throw ZlibError(code: rc) }
            return outBuffer.count - Int(stream.avail_out)
        }
    }
    return Array(output.prefix(produced))
}

/// Compresses as a peer would for permessage-deflate: raw deflate, a sync
/// flush, the 4-byte tail removed (§7.2.1).
func rawDeflate(_ input: [UInt8], windowBits: Int32 = 15, level: Int32 = 6) -> [UInt8] {
    var stream = z_stream()
    _ = deflateInit2_(&stream, level, Z_DEFLATED, -windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                      Int32(MemoryLayout<z_stream>.size))
    defer { deflateEnd(&stream) }
    var input = input
    var output = [UInt8](repeating: 0, count: input.count + 1024)
    let produced = input.withUnsafeMutableBufferPointer { inBuffer in
        output.withUnsafeMutableBufferPointer { outBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = UInt32(inBuffer.count)
            stream.next_out = outBuffer.baseAddress
            stream.avail_out = UInt32(outBuffer.count)
            _ = deflate(&stream, Z_SYNC_FLUSH)
            return outBuffer.count - Int(stream.avail_out)
        }
    }
    return Array(output.prefix(produced - 4))
}
