import CHiredis

/// RESP, Redis's protocol: commands written as arrays of bulk strings
/// (written here: it is a few lines), replies parsed by hiredis' reader.
enum RESP {
    /// Appends `*N\r\n` and `$len\r\narg\r\n` for each argument.
    static func appendCommand(_ arguments: [UnsafeRawBufferPointer], to out: inout [UInt8]) {
        appendLine(UInt8(ascii: "*"), arguments.count, to: &out)
        for argument in arguments {
            appendLine(UInt8(ascii: "$"), argument.count, to: &out)
            out.append(contentsOf: argument)
            out.append(contentsOf: [13, 10])
        }
    }

    static func appendCommand(_ arguments: [String], to out: inout [UInt8]) {
        var copies = arguments
        appendLine(UInt8(ascii: "*"), copies.count, to: &out)
        for index in copies.indices {
            copies[index].withUTF8 { bytes in
                appendLine(UInt8(ascii: "$"), bytes.count, to: &out)
                out.append(contentsOf: bytes)
            }
            out.append(contentsOf: [13, 10])
        }
    }

    /// `command key last` where `last` is `first` and `second` joined.
    static func appendCommand(_ command: UnsafeRawBufferPointer, _ key: UnsafeRawBufferPointer,
                              _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        appendLine(UInt8(ascii: "*"), 3, to: &out)
        for argument in [command, key] {
            appendLine(UInt8(ascii: "$"), argument.count, to: &out)
            out.append(contentsOf: argument)
            out.append(contentsOf: [13, 10])
        }
        appendLine(UInt8(ascii: "$"), first.count + second.count, to: &out)
        out.append(contentsOf: first)
        out.append(contentsOf: second)
        out.append(contentsOf: [13, 10])
    }

    private static func appendLine(_ mark: UInt8, _ number: Int, to out: inout [UInt8]) {
        out.append(mark)
        out.append(contentsOf: String(number).utf8)
        out.append(contentsOf: [13, 10])
    }
}

/// hiredis' reply parser: bytes in, whole replies out. A reply is lent to the
/// caller's closure and freed after it (its strings are views into it).
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init?() {
        guard let made = redisReaderCreate() else { return nil }
        reader = made
    }

    deinit { redisReaderFree(reader) }

    /// Feeds `bytes`, then hands every complete reply to `body`. False when
    /// the stream is not RESP (the connection must be dropped).
    func feed(_ bytes: UnsafeRawBufferPointer, _ body: (RedisReply) -> Void) -> Bool {
        if bytes.count > 0 {
            let fed = redisReaderFeed(reader, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
            if fed != REDIS_OK { return false }
        }
        while true {
            var raw: UnsafeMutableRawPointer?
            if redisReaderGetReply(reader, &raw) != REDIS_OK { return false }
            guard let raw else { return true }
            body(RedisReply(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
    }
}

/// A view of one parsed reply, valid while the reader lends it.
struct RedisReply {
    let raw: UnsafeMutablePointer<redisReply>

    init(_ raw: UnsafeMutablePointer<redisReply>) { self.raw = raw }

    var isError: Bool { raw.pointee.type == REDIS_REPLY_ERROR }
    var isArray: Bool { raw.pointee.type == REDIS_REPLY_ARRAY }
    var count: Int { isArray ? Int(raw.pointee.elements) : 0 }

    subscript(index: Int) -> RedisReply? {
        guard isArray, index < count, let element = raw.pointee.element[index] else { return nil }
        return RedisReply(element)
    }

    /// A string, status or error's bytes (empty for other kinds).
    var bytes: UnsafeRawBufferPointer {
        switch raw.pointee.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS, REDIS_REPLY_ERROR:
            return UnsafeRawBufferPointer(start: raw.pointee.str, count: Int(raw.pointee.len))
        default:
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }
}
