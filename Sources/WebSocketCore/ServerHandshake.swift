/// Why an upgrade request was refused: the HTTP status, and any header the
/// client needs to retry (426 names the versions this server speaks).
public struct HandshakeRejection: Error, Sendable, Equatable {
    /// The HTTP status to answer with.
    public var status: Int
    /// Why, for the body and the log.
    public var reason: String
    /// Header lines to add (`Sec-WebSocket-Version: 13` with a 426).
    public var extraHeaders: [String]

    /// A refusal with `status`, `reason` and extra header lines.
    public init(status: Int, reason: String, extraHeaders: [String] = []) {
        self.status = status
        self.reason = reason
        self.extraHeaders = extraHeaders
    }
}

/// A request that passed every check of RFC 6455 §4.2.1.
public struct UpgradeRequest: Sendable {
    /// The client's `Sec-WebSocket-Key`.
    public var key: String
    /// The request target (path and query).
    public var path: String
    /// The `Origin` header, if sent (browsers always send it).
    public var origin: String?
    /// The protocols the client offers, in its order of preference.
    public var offeredSubprotocols: [String]
}

/// The server's side of the opening handshake (RFC 6455 §4.2), without I/O.
public enum ServerHandshake {
    /// Whether the request asks for a WebSocket at all (`Upgrade: websocket`).
    /// Requests that do not are plain HTTP and get the route's plain answer.
    public static func asksForWebSocket(_ head: HTTPHead) -> Bool {
        head.listContains("Upgrade", token: "websocket")
    }

    /// Checks every requirement of §4.2.1 and returns what the response needs.
    public static func validate(_ head: HTTPHead) -> Result<UpgradeRequest, HandshakeRejection> {
        let (method, target, version) = head.startLine
        // §4.1: the method must be GET and the version at least HTTP/1.1.
        guard method == "GET" else { return .failure(.init(status: 400, reason: "WebSocket upgrade needs GET")) }
        guard version == "HTTP/1.1" else { return .failure(.init(status: 400, reason: "WebSocket upgrade needs HTTP/1.1")) }
        guard head.value("Host") != nil else { return .failure(.init(status: 400, reason: "missing Host")) }
        guard asksForWebSocket(head) else { return .failure(.init(status: 400, reason: "missing Upgrade: websocket")) }
        guard head.listContains("Connection", token: "upgrade") else {
            return .failure(.init(status: 400, reason: "missing Connection: Upgrade"))
        }
        // §4.4: an unsupported version gets 426 with the versions we speak.
        guard head.value("Sec-WebSocket-Version") == "13" else {
            return .failure(.init(status: 426, reason: "unsupported WebSocket version",
                                  extraHeaders: ["Sec-WebSocket-Version: 13"]))
        }
        guard let key = head.value("Sec-WebSocket-Key"), AcceptKey.isValidKey(key) else {
            return .failure(.init(status: 400, reason: "invalid Sec-WebSocket-Key"))
        }
        let offered = head.listValues("Sec-WebSocket-Protocol").map(String.init)
        return .success(UpgradeRequest(key: key, path: target, origin: head.value("Origin"),
                                       offeredSubprotocols: offered))
    }

    /// The first protocol the client offers that the server supports (§4.2.2
    /// step 5.4 leaves the choice to the server; the client's order is its
    /// preference). Nil when none match: the connection proceeds without one.
    public static func selectSubprotocol(offered: [String], supported: [String]) -> String? {
        offered.first { supported.contains($0) }
    }

    /// The 101 response head (§4.2.2 step 5).
    /// `extraHeaders`: whole field lines the application adds (validated by
    /// the caller).
    public static func switchingProtocolsResponse(key: String, subprotocol: String?, extensions: String? = nil,
                                                  extraHeaders: [String] = []) -> String {
        var head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        head += "Sec-WebSocket-Accept: \(AcceptKey.accept(forKey: key))\r\n"
        if let subprotocol { head += "Sec-WebSocket-Protocol: \(subprotocol)\r\n" }
        if let extensions { head += "Sec-WebSocket-Extensions: \(extensions)\r\n" }
        for line in extraHeaders { head += line + "\r\n" }
        return head + "\r\n"
    }
}
