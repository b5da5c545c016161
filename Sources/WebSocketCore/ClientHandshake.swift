/// The client's side of the opening handshake (RFC 6455 §4.1), without I/O:
/// used by the test client and the load generator.
public enum ClientHandshake {
    public static func request(host: String, path: String, key: String, subprotocols: [String] = [],
                               origin: String? = nil, extraHeaders: [String] = []) -> String {
        var head = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        head += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if !subprotocols.isEmpty { head += "Sec-WebSocket-Protocol: \(subprotocols.joined(separator: ", "))\r\n" }
        if let origin { head += "Origin: \(origin)\r\n" }
        for header in extraHeaders { head += header + "\r\n" }
        return head + "\r\n"
    }

    public enum ResponseError: Error, Equatable {
        case notSwitchingProtocols(status: String)
        case missingUpgrade
        case badAccept
        case unrequestedSubprotocol(String)
    }

    /// Checks a server's response (§4.1, the client's steps 1–6). Returns the
    /// subprotocol the server chose, if any.
    public static func validate(_ head: HTTPHead, key: String, offered: [String] = []) -> Result<String?, ResponseError> {
        guard head.startLine.1 == "101" else { return .failure(.notSwitchingProtocols(status: head.startLine.1)) }
        guard head.listContains("Upgrade", token: "websocket"), head.listContains("Connection", token: "upgrade") else {
            return .failure(.missingUpgrade)
        }
        guard head.value("Sec-WebSocket-Accept") == AcceptKey.accept(forKey: key) else { return .failure(.badAccept) }
        if let chosen = head.value("Sec-WebSocket-Protocol") {
            guard offered.contains(chosen) else { return .failure(.unrequestedSubprotocol(chosen)) }
            return .success(chosen)
        }
        return .success(nil)
    }
}
