/// What every message carries: a window into a fixed pattern, chosen by the
/// message's sequence number, so the echo of message n can be checked byte for
/// byte without storing what was sent. Owns one buffer for the process's life.
struct PayloadPattern {
    let size: Int
    let bytes: UnsafeMutableRawBufferPointer
    static let windows = 251  // prime: consecutive messages differ everywhere

    init(size: Int, seed: UInt64, text: Bool, json: Bool = false) {
        self.size = size
        bytes = .allocate(byteCount: size + PayloadPattern.windows, alignment: 16)
        var state = seed | 1
        if json {
            // Records as an API would send them: the same keys, varying values,
            // so it compresses the way real JSON does (about 4:1 with zlib).
            var text: [UInt8] = []
            var n = 0
            while text.count < bytes.count {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let r = Int(truncatingIfNeeded: state >> 33)
                text += Array("{\"id\":\(n),\"user\":\"user\(r % 9973)\",\"active\":\(r & 1 == 0),\"score\":\(r % 1000).\(r % 97),\"tags\":[\"t\(r % 13)\",\"t\(r % 7)\"]},".utf8)
                n += 1
            }
            bytes.copyBytes(from: text.prefix(bytes.count))
            return
        }
        for i in 0..<bytes.count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let r = UInt8(truncatingIfNeeded: state >> 33)
            // Text mode stays within printable ASCII so it is valid UTF-8.
            bytes[i] = text ? 0x20 + r % 0x5F : r
        }
    }

    func message(_ sequence: UInt64) -> UnsafeRawBufferPointer {
        let offset = Int(sequence % UInt64(PayloadPattern.windows))
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[offset..<(offset + size)])
    }

    /// Whether `chunk` equals bytes `at..<at+chunk.count` of message `sequence`.
    func matches(_ chunk: UnsafeRawBufferPointer, sequence: UInt64, at: Int) -> Bool {
        if chunk.isEmpty { return true }
        if at + chunk.count > size { return false }
        let offset = Int(sequence % UInt64(PayloadPattern.windows)) + at
        return memcmp(chunk.baseAddress!, bytes.baseAddress! + offset, chunk.count) == 0
    }
}

#if canImport(Glibc)
import Glibc
#endif
