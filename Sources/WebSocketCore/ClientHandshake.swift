/// The client's side of the opening handshake (RFC 6455 §4.1), without I/O.
public enum ClientHandshake {
    /// The upgrade request head. `host` is the `Host` header's value (with the
    /// port when it is not the scheme's default); `target` is path and query.
    public static func request(host: String, path target: String, key: String, subprotocols: [String] = [],
                               origin: String? = nil, extensions: [ExtensionOffer] = [],
                               extraHeaders: [String] = []) -> String {
        var head = "GET \(target) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        head += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if !subprotocols.isEmpty { head += "Sec-WebSocket-Protocol: \(subprotocols.joined(separator: ", "))\r\n" }
        if !extensions.isEmpty {
            head += "Sec-WebSocket-Extensions: \(extensions.map(\.headerValue).joined(separator: ", "))\r\n"
        }
        if let origin { head += "Origin: \(origin)\r\n" }
        for header in extraHeaders { head += header + "\r\n" }
        return head + "\r\n"
    }

    /// Why a server's answer to the opening handshake is refused (RFC 6455 §4.1).
    public enum ResponseError: Error, Equatable, Sendable {
        /// The server answered with another status than 101 (its status code).
        case notSwitchingProtocols(status: Int)
        case missingUpgrade
        case badAccept
        case unrequestedSubprotocol(String)
        case unrequestedExtension(String)
    }

    /// What a valid response agreed.
    public struct Agreement {
        /// The subprotocol the server chose, if any.
        public var subprotocol: String?
        /// The extension agreed for the connection's messages, if any.
        public var messageExtension: (any MessageExtension)?
    }

    /// Checks a server's response (§4.1, the client's steps 1–6).
    public static func validate(_ head: HTTPHead, key: String, offered: [String] = [],
                                extensions: [any ExtensionNegotiator] = []) -> Result<Agreement, ResponseError> {
        guard head.startLine.1 == "101" else {
            return .failure(.notSwitchingProtocols(status: Int(head.startLine.1) ?? 0))
        }
        guard head.listContains("Upgrade", token: "websocket"), head.listContains("Connection", token: "upgrade") else {
            return .failure(.missingUpgrade)
        }
        guard head.value("Sec-WebSocket-Accept") == AcceptKey.accept(forKey: key) else { return .failure(.badAccept) }
        var agreement = Agreement()
        if let chosen = head.value("Sec-WebSocket-Protocol") {
            guard offered.contains(chosen) else { return .failure(.unrequestedSubprotocol(chosen)) }
            agreement.subprotocol = chosen
        }
        let values = head.listValues("Sec-WebSocket-Extensions")
        if !values.isEmpty {
            guard let response = ExtensionOffer.parse(values) else {
                return .failure(.unrequestedExtension(values.joined(separator: ", ")))
            }
            switch ExtensionNegotiation.confirm(response: response, supported: extensions) {
            case .failure(let error): return .failure(error)
            case .success(let ext): agreement.messageExtension = ext
            }
        }
        return .success(agreement)
    }
}
