import UVKit
import WebSocketCore

/// The HTTP request that asks for a WebSocket, as a route's upgrade hook sees
/// it before the 101: what an application needs to authenticate a user and
/// put them somewhere (a token in the query or in `Authorization`, a session
/// cookie, the peer's address). Made only for routes with a hook, once per
/// handshake; nothing of it is kept after the hook returns.
public struct WebSocketUpgradeRequest: Sendable {
    /// Always "GET" (RFC 6455 §4.1); the handshake was validated before.
    public let method: String
    /// The request target as sent: path and query.
    public let target: String
    /// The route's path (the target before `?`).
    public let path: String
    /// The query string after `?`, undecoded; nil without one.
    public let query: String?
    /// The header fields in order, names as sent.
    public let headers: [(name: String, value: String)]
    /// The peer's address; nil if the socket is already gone.
    public let peerAddress: SocketAddress?
    /// The subprotocols the client offers, in its order of preference.
    public let offeredSubprotocols: [String]
    /// The `Origin` header (browsers always send it).
    public let origin: String?

    init(head: HTTPHead, upgrade: UpgradeRequest, peerAddress: SocketAddress?) {
        method = head.startLine.0
        target = head.startLine.1
        let beforeFragment = target.prefix { $0 != "#" }
        if let mark = beforeFragment.firstIndex(of: "?") {
            path = String(beforeFragment[..<mark])
            query = String(beforeFragment[beforeFragment.index(after: mark)...])
        } else {
            path = String(beforeFragment)
            query = nil
        }
        headers = head.headers
        self.peerAddress = peerAddress
        offeredSubprotocols = upgrade.offeredSubprotocols
        origin = upgrade.origin
    }

    /// The first value of a header field, by case-insensitive name.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }

    /// The query's items in order, names and values percent-decoded and `+`
    /// read as a space (the form encoding browsers use); an item without `=`
    /// has an empty value. A malformed escape is kept as it is.
    public var queryItems: [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { item in
            guard let equals = item.firstIndex(of: "=") else { return (Self.decode(item), "") }
            return (Self.decode(item[..<equals]), Self.decode(item[item.index(after: equals)...]))
        }
    }

    /// The first query item named `name`, decoded.
    public func queryItem(_ name: String) -> String? {
        queryItems.first { $0.name == name }?.value
    }

    /// The request's cookies (RFC 6265 §5.4: `name=value` pairs separated by
    /// `; ` in each `Cookie` field), the first of each name kept.
    public var cookies: [String: String] {
        var result: [String: String] = [:]
        for field in headers where field.name.lowercased() == "cookie" {
            for pair in field.value.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " || $0 == "\t" }
                guard let equals = trimmed.firstIndex(of: "="), equals > trimmed.startIndex else { continue }
                let name = String(trimmed[..<equals])
                var value = trimmed[trimmed.index(after: equals)...]
                // A value may be quoted (RFC 6265 §4.1.1 cookie-value).
                if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
                if result[name] == nil { result[name] = String(value) }
            }
        }
        return result
    }

    /// The cookie named `name`, if the request carries it.
    public func cookie(_ name: String) -> String? { cookies[name] }

    /// Percent-decoding of one query component (RFC 3986 §2.1), `+` as space.
    static func decode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var utf8 = text.utf8[...]
        while let byte = utf8.first {
            utf8 = utf8.dropFirst()
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), utf8.count >= 2,
                      let high = hexValue(utf8[utf8.startIndex]),
                      let low = hexValue(utf8[utf8.index(after: utf8.startIndex)]) {
                bytes.append(high << 4 | low)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// What a route's upgrade hook decides.
public enum UpgradeDecision<ConnectionData> {
    /// Switch protocols. `subprotocol` must be one the client offered (nil:
    /// the server's own choice from `options.subprotocols`); `data` becomes
    /// the connection's `data` before `didOpen`; `headers` are added to the
    /// 101 (each one `Name: value` line, such as a `Set-Cookie`).
    case accept(subprotocol: String? = nil, data: ConnectionData? = nil, headers: [String] = [])
    /// Answer with `status` (400 to 599) instead, with `headers` (a
    /// `WWW-Authenticate` for a 401, say) and `reason` as the plain-text body.
    case refuse(status: Int, headers: [String] = [], reason: String = "")
}

/// A route's decision, made on the loop thread with the request in hand.
public typealias UpgradeHook<ConnectionData> = (WebSocketUpgradeRequest) -> UpgradeDecision<ConnectionData>
