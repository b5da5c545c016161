/// Where a Redis server is and how to log in: `redis://[[user]:password@]host[:port][/db]`
/// (the form redis-cli and most clients take). A password with `:`, `@` or
/// `/` is percent-encoded.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// Host name or address.
    public var host: String
    /// TCP port (6379 by default).
    public var port: Int
    /// Redis 6 ACL user; nil logs in with the password alone (`AUTH password`).
    public var user: String?
    /// Sent with `AUTH` (with `user`, Redis 6's ACL form) before anything else.
    public var password: String?
    /// The database index (`SELECT`). Redis pub/sub is not scoped by
    /// database, so the backplane puts it in its channel names too: servers
    /// on different databases of one Redis do not hear each other.
    public var database: Int

    /// Why a `redis://` URL was refused.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        /// The URL again, with the password left out (for logs).
        public var description: String {
            switch self {
            case .malformed(let why): return "invalid Redis URL: \(why)"
            }
        }
    }

    /// A Redis server by its parts.
    public init(host: String, port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// Parses `redis://[[user]:password@]host[:port][/database]`; throws `ParseError` naming what is wrong.
    public init(parsing text: String) throws(ParseError) {
        guard text.hasPrefix("redis://") else { throw .malformed("\(text) does not start with redis://") }
        var rest = Substring(text.dropFirst("redis://".count))
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = String(credentials[..<colon])
                self.user = user.isEmpty ? nil : Self.decode(user)
                password = Self.decode(String(credentials[credentials.index(after: colon)...]))
            } else {
                // redis://password@host, as some clients write it.
                user = nil
                password = Self.decode(String(credentials))
            }
        } else {
            user = nil
            password = nil
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard let n = Int(db), n >= 0, n < 1 << 16 else { throw .malformed("bad database index in \(text)") }
                database = n
            }
        }
        self.database = database
        var port = 6379
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .malformed("unclosed [ in \(text)") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw .malformed("bad port in \(text)") }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            guard let p = Int(rest[rest.index(after: colon)...]), (1...65535).contains(p) else {
                throw .malformed("bad port in \(text)")
            }
            port = p
            host = String(rest[..<colon])
        } else {
            host = String(rest)
        }
        guard !host.isEmpty else { throw .malformed("no host in \(text)") }
        self.port = port
    }

    /// The URL without its password (for logs).
    public var description: String {
        let login = password == nil ? "" : "\(user ?? ""):***@"
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "redis://\(login)\(shownHost):\(port)/\(database)"
    }

    private static func decode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.first {
            utf8 = utf8.dropFirst()
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
               let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
