/// Limits on an HTTP/1.1 message head, the first line of defence against a peer
/// that sends an endless or bloated request.
public struct HTTPHeadLimits: Sendable {
    /// Bytes up to and including the blank line. Past it: 431.
    public var maxHeadSize: Int = 8 * 1024
    /// Header fields. Past it: 431.
    public var maxHeaderCount: Int = 64
    /// Limits for one head: its size in bytes and its number of header fields.
    public init(maxHeadSize: Int = 8 * 1024, maxHeaderCount: Int = 64) {
        self.maxHeadSize = maxHeadSize
        self.maxHeaderCount = maxHeaderCount
    }
}

/// Why a head could not be parsed; each maps to the status a server answers with.
public enum HTTPHeadError: Error, Sendable, Equatable {
    case malformed
    case headTooLarge
    case tooManyHeaders
    case unsupportedVersion

    /// RFC 9110 §15.5.1 (400), RFC 6585 §5 (431), RFC 9110 §15.6.6 (505).
    public var status: Int {
        switch self {
        case .malformed: return 400
        case .headTooLarge, .tooManyHeaders: return 431
        case .unsupportedVersion: return 505
        }
    }
}

/// A parsed HTTP/1.x message head (RFC 9112 §2–5): the start line's three parts
/// and the header fields in order. Requests and responses share it.
public struct HTTPHead: Sendable {
    /// Request: method, target, version. Response: version, status, reason.
    public var startLine: (String, String, String)
    /// The header fields in order, names as sent.
    public var headers: [(name: String, value: String)]

    /// The first value of a field, by case-insensitive name (RFC 9110 §5.1).
    public func value(_ name: String) -> String? {
        headers.first { HTTPHead.sameName($0.name, name) }?.value
    }

    /// ASCII case-insensitive equality, without making lowered copies (a
    /// field name is a token: ASCII only, RFC 9110 §5.1).
    static func sameName(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        for (c, d) in zip(x, y) where c != d {
            guard c | 0x20 == d | 0x20, (c | 0x20) >= UInt8(ascii: "a"), (c | 0x20) <= UInt8(ascii: "z") else { return false }
        }
        return true
    }

    /// All values of a field, split as a comma-separated list (RFC 9110 §5.6.1),
    /// trimmed, with empty elements dropped.
    public func listValues(_ name: String) -> [Substring] {
        var result: [Substring] = []
        for field in headers where HTTPHead.sameName(field.name, name) {
            for element in field.value.split(separator: ",") {
                let trimmed = trimWhitespace(element)
                if !trimmed.isEmpty { result.append(trimmed) }
            }
        }
        return result
    }

    private func trimWhitespace(_ s: Substring) -> Substring {
        var t = s
        while let c = t.first, c == " " || c == "\t" { t.removeFirst() }
        while let c = t.last, c == " " || c == "\t" { t.removeLast() }
        return t
    }

    /// Whether a comma-separated field holds `token`, case-insensitively (as
    /// `Connection: keep-alive, Upgrade` must match "upgrade").
    public func listContains(_ name: String, token: String) -> Bool {
        listValues(name).contains { $0.lowercased() == token.lowercased() }
    }
}

/// What `HTTPHeadParser.parse` made of the bytes so far.
public enum HTTPHeadParseResult: Sendable {
    case incomplete
    /// The head and the number of bytes it took, blank line included. Any bytes
    /// after it belong to what follows (a WebSocket frame, say).
    case complete(HTTPHead, length: Int)
    case failure(HTTPHeadError)
}

/// Parses an HTTP/1.1 request or response head (RFC 9112 §2-§5), within `HTTPHeadLimits`.
public enum HTTPHeadParser {
    /// Looks for a complete head in `bytes`. `scannedBefore` is how many bytes an
    /// earlier call already searched for the blank line (so a head dripped in
    /// byte by byte costs linear, not quadratic, time).
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: HTTPHeadLimits = HTTPHeadLimits(),
                             scannedBefore: Int = 0) -> HTTPHeadParseResult {
        guard let end = findBlankLine(bytes, from: max(0, scannedBefore - 3), limit: limits.maxHeadSize) else {
            if bytes.count >= limits.maxHeadSize { return .failure(.headTooLarge) }
            // Bytes that cannot begin a start line (a TLS ClientHello on a
            // plain port begins with 0x16) are refused at once, not after the
            // head timeout.
            return startsLikeHTTP(bytes) ? .incomplete : .failure(.malformed)
        }
        var lines: [UnsafeRawBufferPointer] = []
        var lineStart = 0
        var i = 0
        while i < end {
            let b = bytes[i]
            if b == UInt8(ascii: "\r") {
                // RFC 9112 §2.2: a CR must be followed by LF.
                guard bytes[i + 1] == UInt8(ascii: "\n") else { return .failure(.malformed) }
                lines.append(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<i]))
                i += 2
                lineStart = i
                continue
            }
            if b == UInt8(ascii: "\n") || b == 0 { return .failure(.malformed) }
            i += 1
        }
        lines.append(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<end]))
        guard let first = lines.first else { return .failure(.malformed) }
        guard let startLine = parseStartLine(first) else { return .failure(.malformed) }
        let version = startLine.0.hasPrefix("HTTP/") ? startLine.0 : startLine.2
        guard version.hasPrefix("HTTP/") else { return .failure(.malformed) }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { return .failure(.unsupportedVersion) }
        if lines.count - 1 > limits.maxHeaderCount { return .failure(.tooManyHeaders) }
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(lines.count - 1)
        for line in lines.dropFirst() {
            guard let field = parseField(line) else { return .failure(.malformed) }
            headers.append(field)
        }
        return .complete(HTTPHead(startLine: startLine, headers: headers), length: end + 4)
    }

    /// Whether the first word so far is visible ASCII (RFC 9112 §3: a method
    /// is a token, and a status line begins with "HTTP/").
    static func startsLikeHTTP(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for i in 0..<min(bytes.count, 32) {
            let byte = bytes[i]
            if byte == UInt8(ascii: " ") { return i > 0 }
            if !isVisible(byte) { return false }
        }
        return true
    }

    /// Offset of the CRLFCRLF that ends the head, searched within `limit` bytes.
    static func findBlankLine(_ bytes: UnsafeRawBufferPointer, from start: Int, limit: Int) -> Int? {
        let last = min(bytes.count, limit) - 4
        if last < start { return nil }
        var i = start
        while i <= last {
            if bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i }
            i += 1
        }
        return nil
    }

    /// "A B C": two single spaces; the third part may itself hold spaces (a reason
    /// phrase) but the first two may not.
    static func parseStartLine(_ line: UnsafeRawBufferPointer) -> (String, String, String)? {
        guard let sp1 = line.firstIndex(of: UInt8(ascii: " ")) else { return nil }
        let rest = line[(sp1 + 1)...]
        guard let sp2 = rest.firstIndex(of: UInt8(ascii: " ")) else { return nil }
        let a = line[..<sp1], b = line[(sp1 + 1)..<sp2], c = line[(sp2 + 1)...]
        if a.isEmpty || b.isEmpty || c.isEmpty { return nil }
        for byte in a where !isVisible(byte) { return nil }
        for byte in b where !isVisible(byte) { return nil }
        for byte in c where !(isVisible(byte) || byte == 0x20 || byte == 0x09) { return nil }
        return (String(decoding: a, as: UTF8.self), String(decoding: b, as: UTF8.self), String(decoding: c, as: UTF8.self))
    }

    /// `name ":" OWS value OWS` (RFC 9112 §5). A line starting with whitespace is
    /// obsolete line folding, refused with 400 as §5.2 allows.
    static func parseField(_ line: UnsafeRawBufferPointer) -> (name: String, value: String)? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return nil }
        let name = line[..<colon]
        for byte in name where !isTokenChar(byte) { return nil }
        var lo = colon + 1, hi = line.count
        while lo < hi && (line[lo] == 0x20 || line[lo] == 0x09) { lo += 1 }
        while hi > lo && (line[hi - 1] == 0x20 || line[hi - 1] == 0x09) { hi -= 1 }
        let value = line[lo..<hi]
        for byte in value where !(isVisible(byte) || byte == 0x20 || byte == 0x09 || byte >= 0x80) { return nil }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    @inlinable static func isVisible(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7F }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenChar(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }
}
