/// A `ws://` or `wss://` URL taken apart for connecting (RFC 6455 §3): host,
/// port, and the request target (path and query; the fragment is not allowed).
public struct WebSocketURL: Sendable, Equatable {
    /// `wss://` (TLS) rather than `ws://`.
    public var secure: Bool
    /// A name or an address; an IPv6 address without its brackets.
    public var host: String
    /// The port (80 or 443 unless given).
    public var port: Int
    /// Path and query, as the request line carries them ("/" at least).
    public var target: String

    /// Why a text is not a `ws://` or `wss://` URL (RFC 6455 §3).
    public enum ParseError: Error, Sendable, Equatable {
        /// Not a URL of the form scheme://host[:port][/path][?query].
        case malformed(String)
        /// A scheme other than ws and wss.
        case unsupportedScheme(String)
    }

    /// A URL by its parts.
    public init(secure: Bool, host: String, port: Int, target: String) {
        self.secure = secure
        self.host = host
        self.port = port
        self.target = target
    }

    /// Parses a `ws://` or `wss://` URL; throws `ParseError` naming what is wrong.
    public init(parsing text: String) throws(ParseError) {
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else {
            throw .malformed("no scheme in \(text)")
        }
        let scheme = text[..<colon].lowercased()
        switch scheme {
        case "ws": secure = false
        case "wss": secure = true
        default: throw .unsupportedScheme(scheme)
        }
        var rest = text[text.index(colon, offsetBy: 3)...]
        // §3: a fragment identifier has no meaning in a WebSocket URI.
        if rest.contains("#") { throw .malformed("fragment in \(text)") }
        let targetStart = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = rest[..<targetStart]
        rest = rest[targetStart...]
        if authority.contains("@") { throw .malformed("user information in \(text)") }
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .malformed("unclosed [ in \(text)") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .malformed("junk after ] in \(text)") }
                portText = after.dropFirst()
            }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                portText = authority[authority.index(after: colon)...]
                authority = authority[..<colon]
            }
            host = String(authority)
        }
        guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .malformed("no host in \(text)") }
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { throw .malformed("bad port in \(text)") }
            port = p
        } else {
            port = secure ? 443 : 80
        }
        target = rest.isEmpty ? "/" : (rest.hasPrefix("?") ? "/" + rest : String(rest))
        guard target.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .malformed("bad characters in path of \(text)") }
    }

    /// The `Host` header's value: the port only when it is not the scheme's default.
    public var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }
}
