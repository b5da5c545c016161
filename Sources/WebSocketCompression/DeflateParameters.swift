import WebSocketCore

/// The four parameters of one permessage-deflate offer or response
/// (RFC 7692 §7.1), checked: a parameter that is unknown, repeated, or has a
/// value it may not have makes the whole entry invalid (§7.1: the server
/// declines that offer, the client fails the handshake).
public struct DeflateParameters: Equatable, Sendable {
    /// `client_max_window_bits`: absent, bare (offers only: "limit me if you
    /// like"), or a value 8...15.
    public enum WindowBits: Equatable, Sendable {
        case absent
        case bare
        case value(Int)
    }

    /// RFC 7692 §7.1.1.1: the server compresses each message with a fresh context.
    public var serverNoContextTakeover = false
    /// RFC 7692 §7.1.1.2: the client compresses each message with a fresh context.
    public var clientNoContextTakeover = false
    /// nil when absent; always has a value when present (§7.1.2.1).
    public var serverMaxWindowBits: Int?
    /// RFC 7692 §7.1.2.2: the client's window, absent, offered without a value, or 8 to 15.
    public var clientMaxWindowBits = WindowBits.absent

    /// The extension's token in `Sec-WebSocket-Extensions`.
    public static let extensionName = "permessage-deflate"

    /// No parameter: both contexts kept, 15-bit windows.
    public init() {}

    /// Checks an offer (`isResponse` false) or a response entry. Nil when the
    /// entry breaks §7.1's rules.
    public init?(_ entry: ExtensionOffer, isResponse: Bool) {
        guard entry.name == Self.extensionName else { return nil }
        var seen = Set<String>()
        for parameter in entry.parameters {
            // §7.1: a parameter may appear once.
            guard seen.insert(parameter.name).inserted else { return nil }
            switch parameter.name {
            case "server_no_context_takeover":
                guard parameter.value == nil else { return nil }
                serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard parameter.value == nil else { return nil }
                clientNoContextTakeover = true
            case "server_max_window_bits":
                // §7.1.2.1: always with a value.
                guard let bits = parameter.value.flatMap(Self.windowBits) else { return nil }
                serverMaxWindowBits = bits
            case "client_max_window_bits":
                if let value = parameter.value {
                    guard let bits = Self.windowBits(value) else { return nil }
                    clientMaxWindowBits = .value(bits)
                } else {
                    // §7.1.2.2: bare in an offer only; a response must say which.
                    if isResponse { return nil }
                    clientMaxWindowBits = .bare
                }
            default:
                return nil
            }
        }
    }

    /// §7.1.2.1's ABNF: 8 to 15, in decimal without leading zeros.
    static func windowBits(_ text: String) -> Int? {
        guard let first = text.utf8.first, first != UInt8(ascii: "0"), let value = Int(text),
              (8...15).contains(value) else { return nil }
        return value
    }

    /// The header entry: `permessage-deflate; server_no_context_takeover; ...`.
    public var entry: ExtensionOffer {
        var parameters: [ExtensionOffer.Parameter] = []
        if serverNoContextTakeover { parameters.append(.init("server_no_context_takeover")) }
        if clientNoContextTakeover { parameters.append(.init("client_no_context_takeover")) }
        if let bits = serverMaxWindowBits { parameters.append(.init("server_max_window_bits", String(bits))) }
        switch clientMaxWindowBits {
        case .absent: break
        case .bare: parameters.append(.init("client_max_window_bits"))
        case .value(let bits): parameters.append(.init("client_max_window_bits", String(bits)))
        }
        return ExtensionOffer(name: Self.extensionName, parameters: parameters)
    }
}
