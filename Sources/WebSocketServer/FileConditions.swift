#if canImport(Glibc)
import Glibc
#endif
import WebSocketCore

/// A file as a response sees it: its size and the two validators made from
/// its metadata (RFC 9110 §8.8).
struct FileMetadata: Equatable {
    var size: Int
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int
    var inode: UInt64

    /// A strong validator (§8.8.3): it changes whenever the file is replaced
    /// (inode), written (modification time, to the nanosecond) or resized.
    var etag: String {
        let nanos = modifiedSeconds &* 1_000_000_000 &+ modifiedNanoseconds
        return "\"" + String(inode, radix: 16) + "-" + String(UInt64(bitPattern: Int64(nanos)), radix: 16) + "-"
            + String(size, radix: 16) + "\""
    }

    var lastModified: String { HTTPDate.format(modifiedSeconds) }
}

/// IMF-fixdate (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT". Written
/// by hand, not with `strftime`, whose names follow the process's locale.
enum HTTPDate {
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    /// Seconds since the epoch, or nil for anything but an IMF-fixdate (the
    /// form this server sends, and so the one a client echoes back; §13.1.3
    /// lets a server ignore a date it cannot parse).
    static func parse(_ text: String) -> Int? {
        let b = Array(text.utf8)
        guard b.count == 29, b[3] == UInt8(ascii: ","), b[4] == 0x20, b[7] == 0x20, b[11] == 0x20, b[16] == 0x20,
              b[19] == UInt8(ascii: ":"), b[22] == UInt8(ascii: ":"), b[25] == 0x20,
              String(decoding: b[26...], as: UTF8.self) == "GMT" else { return nil }
        func number(_ range: Range<Int>) -> Int32? {
            var n: Int32 = 0
            for c in b[range] {
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                n = n * 10 + Int32(c - UInt8(ascii: "0"))
            }
            return n
        }
        guard let day = number(5..<7), let year = number(12..<16), let hour = number(17..<19),
              let minute = number(20..<22), let second = number(23..<25),
              let month = months.firstIndex(of: String(decoding: b[8..<11], as: UTF8.self)),
              (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = Int32(month)
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        return Int(timegm(&parts))
    }
}

/// What a GET or HEAD of a file gets, from its conditional and range headers
/// (RFC 9110 §13.2.2 gives the order: If-None-Match, else If-Modified-Since;
/// then Range, subject to If-Range).
enum FileAnswer: Equatable {
    case whole
    case notModified
    /// Bytes `range` of the file (206).
    case partial(Range<Int>)
    /// No byte of the range is in the file (416).
    case unsatisfiable

    static func evaluate(_ request: HTTPHead, method: String, file: FileMetadata, etag: String) -> FileAnswer {
        if let noneMatch = request.value("If-None-Match") {
            if matchesAny(noneMatch, etag: etag) { return .notModified }
        } else if let since = request.value("If-Modified-Since").flatMap(HTTPDate.parse), file.modifiedSeconds <= since {
            return .notModified
        }
        // §14.2: Range applies to GET only.
        guard method == "GET", let range = request.value("Range") else { return .whole }
        if let ifRange = request.value("If-Range") {
            // §13.1.5: an entity tag must match strongly; a date must be the
            // exact Last-Modified. Otherwise the whole file is sent.
            if ifRange.hasPrefix("\"") || ifRange.hasPrefix("W/") {
                guard ifRange == etag else { return .whole }
            } else {
                guard HTTPDate.parse(ifRange) == file.modifiedSeconds else { return .whole }
            }
        }
        return byteRange(range, size: file.size)
    }

    /// §13.1.2: `*`, or a list of entity tags, compared weakly as
    /// If-None-Match asks (a `W/` prefix is ignored; ours is strong).
    static func matchesAny(_ header: String, etag: String) -> Bool {
        let trimmed = header.trimmingSpaces
        if trimmed == "*" { return true }
        for item in trimmed.split(separator: ",") {
            var tag = Substring(item.trimmingSpaces)
            if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
            if tag == etag { return true }
        }
        return false
    }

    /// One `bytes=` range (§14.1.2): `a-b`, `a-` or `-n`. A header this server
    /// does not take (another unit, several ranges, bad syntax) is ignored and
    /// the whole file sent, as §14.2 allows.
    static func byteRange(_ header: String, size: Int) -> FileAnswer {
        let trimmed = header.trimmingSpaces
        guard trimmed.hasPrefix("bytes="), !trimmed.contains(",") else { return .whole }
        let spec = trimmed.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            // A suffix: the last n bytes.
            guard let n = Int(last), n >= 0 else { return .whole }
            if n == 0 || size == 0 { return .unsatisfiable }
            return .partial(max(0, size - n)..<size)
        }
        guard let start = Int(first), start >= 0 else { return .whole }
        var end = size
        if !last.isEmpty {
            guard let lastByte = Int(last), lastByte >= start else { return .whole }
            end = min(size, lastByte &+ 1)
        }
        return start < size ? .partial(start..<end) : .unsatisfiable
    }
}

extension StringProtocol {
    /// Without the spaces and tabs around it (RFC 9110 §5.6.3's OWS).
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}
