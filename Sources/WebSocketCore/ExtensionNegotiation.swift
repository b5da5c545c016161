/// One entry of a `Sec-WebSocket-Extensions` header (RFC 6455 §9.1): an
/// extension's name and its parameters, in order.
public struct ExtensionOffer: Sendable, Equatable {
    /// The extension's token ("permessage-deflate").
    public var name: String
    /// Its parameters, in the order given.
    public var parameters: [Parameter]

    /// One `name[=value]` parameter of an offer.
    public struct Parameter: Sendable, Equatable {
        /// The parameter's name.
        public var name: String
        /// Nil for a bare parameter (`client_max_window_bits`).
        public var value: String?
        /// A parameter, with a value or without.
        public init(_ name: String, _ value: String? = nil) {
            self.name = name
            self.value = value
        }
    }

    /// An offer or answer of one extension.
    public init(name: String, parameters: [Parameter] = []) {
        self.name = name
        self.parameters = parameters
    }

    /// The header text: `name; a; b=1`.
    public var headerValue: String {
        ([name] + parameters.map { p in p.value.map { "\(p.name)=\($0)" } ?? p.name }).joined(separator: "; ")
    }

    /// Parses every `Sec-WebSocket-Extensions` value of a head, in order. Nil
    /// when the syntax is broken (§9.1's grammar: tokens, and values that are
    /// tokens or quoted strings); the server then ignores the header, the client
    /// fails the handshake.
    public static func parse(_ values: [Substring]) -> [ExtensionOffer]? {
        var offers: [ExtensionOffer] = []
        for value in values {
            for entry in value.split(separator: ",", omittingEmptySubsequences: false) {
                let parts = entry.split(separator: ";", omittingEmptySubsequences: false).map(trimmed)
                guard let first = parts.first, isToken(first) else { return nil }
                var offer = ExtensionOffer(name: String(first))
                for part in parts.dropFirst() {
                    if let eq = part.firstIndex(of: "=") {
                        let key = trimmed(part[..<eq])
                        var v = trimmed(part[part.index(after: eq)...])
                        if v.count >= 2, v.first == "\"", v.last == "\"" { v = v.dropFirst().dropLast() }
                        guard isToken(key), isToken(v) else { return nil }
                        offer.parameters.append(Parameter(String(key), String(v)))
                    } else {
                        guard isToken(part) else { return nil }
                        offer.parameters.append(Parameter(String(part)))
                    }
                }
                offers.append(offer)
            }
        }
        return offers
    }

    static func trimmed(_ s: Substring) -> Substring {
        var s = s
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }

    /// RFC 7230 §3.2.6 token characters.
    static func isToken(_ s: Substring) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in
            c > 0x20 && c < 0x7F && !"()<>@,;:\\\"/[]?={}".utf8.contains(c)
        }
    }
}

/// An extension an endpoint supports: it negotiates in the handshake and makes
/// the connection's `MessageExtension`. permessage-deflate plugs in here.
public protocol ExtensionNegotiator: Sendable {
    /// The registered name (`permessage-deflate`).
    var name: String { get }
    /// Server: the client's offers of this extension, in its order of
    /// preference. Returns the response entry and the extension for the first
    /// offer it can honour, or nil to decline them all.
    func accept(_ offers: [ExtensionOffer]) -> (response: ExtensionOffer, extension: any MessageExtension)?
    /// Client: the entries to offer.
    func offers() -> [ExtensionOffer]
    /// Client: the server's answer. Nil refuses it (the handshake fails).
    func confirm(_ response: ExtensionOffer) -> (any MessageExtension)?
}

/// Picks the extension a server agrees to from a client's offers (RFC 6455 §9.1).
public enum ExtensionNegotiation {
    /// Server side (§9.1): the first supported extension that accepts one of
    /// the client's offers. One extension at most, since each claims RSV bits.
    public static func accept(offers: [ExtensionOffer], supported: [any ExtensionNegotiator])
        -> (response: String, extension: any MessageExtension)? {
        for negotiator in supported {
            let mine = offers.filter { $0.name == negotiator.name }
            if mine.isEmpty { continue }
            if let (response, ext) = negotiator.accept(mine) { return (response.headerValue, ext) }
        }
        return nil
    }

    /// Client side (§4.1, the client's step 5): every extension in the response
    /// must be one we offered, and its negotiator must accept the answer.
    public static func confirm(response: [ExtensionOffer], supported: [any ExtensionNegotiator])
        -> Result<(any MessageExtension)?, ClientHandshake.ResponseError> {
        if response.isEmpty { return .success(nil) }
        guard response.count == 1 else { return .failure(.unrequestedExtension(response.map(\.name).joined(separator: ", "))) }
        guard let negotiator = supported.first(where: { $0.name == response[0].name }) else {
            return .failure(.unrequestedExtension(response[0].name))
        }
        guard let ext = negotiator.confirm(response[0]) else { return .failure(.unrequestedExtension(response[0].headerValue)) }
        return .success(ext)
    }
}
