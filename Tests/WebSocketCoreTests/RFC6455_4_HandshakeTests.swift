import Foundation
import Testing
import WebSocketCore

func head(_ text: String, limits: HTTPHeadLimits = HTTPHeadLimits()) -> HTTPHeadParseResult {
    Array(text.utf8).withUnsafeBytes { HTTPHeadParser.parse($0, limits: limits) }
}

func parsedHead(_ text: String) -> HTTPHead? {
    if case .complete(let h, _) = head(text) { return h }
    return nil
}

let sampleRequest = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n"
    + "Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n"

@Suite("RFC 6455 §4 Opening Handshake")
struct HandshakeTests {
    @Test("§1.3 sample key: dGhlIHNhbXBsZSBub25jZQ== gives s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    func sampleAcceptKey() {
        #expect(AcceptKey.accept(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test("the §1.3 sample request validates, with its origin and offered protocols")
    func sampleRequestValidates() throws {
        let h = try #require(parsedHead(sampleRequest))
        guard case .success(let upgrade) = ServerHandshake.validate(h) else { Issue.record("rejected"); return }
        #expect(upgrade.key == "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(upgrade.path == "/chat")
        #expect(upgrade.origin == "http://example.com")
        #expect(upgrade.offeredSubprotocols == ["chat", "superchat"])
    }

    @Test("header names are case-insensitive and Connection/Upgrade are token lists")
    func tokenLists() throws {
        let text = "GET /ws HTTP/1.1\r\nhost: a\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
            + "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n"
        let h = try #require(parsedHead(text))
        guard case .success = ServerHandshake.validate(h) else { Issue.record("rejected"); return }
    }

    @Test("each missing requirement is refused with the right status")
    func rejections() throws {
        func status(_ text: String) -> Int? {
            guard let h = parsedHead(text) else { return nil }
            if case .failure(let r) = ServerHandshake.validate(h) { return r.status }
            return 101
        }
        #expect(status(sampleRequest) == 101)
        #expect(status(sampleRequest.replacingFirst("GET", with: "POST")) == 400)
        #expect(status(sampleRequest.replacingFirst("HTTP/1.1", with: "HTTP/1.0")) == 400)
        #expect(status(sampleRequest.replacingFirst("Upgrade: websocket\r\n", with: "")) == 400)
        #expect(status(sampleRequest.replacingFirst("Connection: Upgrade\r\n", with: "Connection: keep-alive\r\n")) == 400)
        #expect(status(sampleRequest.replacingFirst("Host: server.example.com\r\n", with: "")) == 400)
        #expect(status(sampleRequest.replacingFirst("dGhlIHNhbXBsZSBub25jZQ==", with: "short==")) == 400)
        #expect(status(sampleRequest.replacingFirst("dGhlIHNhbXBsZSBub25jZQ==", with: "dGhlIHNhbXBsZSBub25jZQ")) == 400)
        let h = try #require(parsedHead(sampleRequest.replacingFirst("Version: 13", with: "Version: 8")))
        guard case .failure(let r) = ServerHandshake.validate(h) else { Issue.record("accepted"); return }
        #expect(r.status == 426)
        #expect(r.extraHeaders == ["Sec-WebSocket-Version: 13"])
    }

    @Test("subprotocol: the first one the client offers that the server supports")
    func subprotocolSelection() {
        #expect(ServerHandshake.selectSubprotocol(offered: ["chat", "superchat"], supported: ["superchat", "chat"]) == "chat")
        #expect(ServerHandshake.selectSubprotocol(offered: ["mqtt", "superchat"], supported: ["superchat", "chat"]) == "superchat")
        #expect(ServerHandshake.selectSubprotocol(offered: [], supported: ["chat"]) == nil)
        #expect(ServerHandshake.selectSubprotocol(offered: ["x"], supported: []) == nil)
    }

    @Test("the 101 response head, and the client's validation of it")
    func switchingProtocols() throws {
        let response = ServerHandshake.switchingProtocolsResponse(key: "dGhlIHNhbXBsZSBub25jZQ==", subprotocol: "chat")
        #expect(response.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
        #expect(response.hasSuffix("Sec-WebSocket-Protocol: chat\r\n\r\n"))
        let h = try #require(parsedHead(response))
        #expect(try ClientHandshake.validate(h, key: "dGhlIHNhbXBsZSBub25jZQ==", offered: ["chat"]).get().subprotocol == "chat")
        #expect(failure(ClientHandshake.validate(h, key: "AAAAAAAAAAAAAAAAAAAAAA==", offered: ["chat"])) == .badAccept)
        #expect(failure(ClientHandshake.validate(h, key: "dGhlIHNhbXBsZSBub25jZQ==", offered: [])) == .unrequestedSubprotocol("chat"))
    }

    @Test("a client request round-trips through the server's validation")
    func clientRequest() throws {
        let key = AcceptKey.makeKey()
        #expect(AcceptKey.isValidKey(key))
        let text = ClientHandshake.request(host: "127.0.0.1:5000", path: "/ws", key: key, subprotocols: ["a", "b"], origin: "http://x")
        let h = try #require(parsedHead(text))
        guard case .success(let u) = ServerHandshake.validate(h) else { Issue.record("rejected"); return }
        #expect(u.key == key && u.offeredSubprotocols == ["a", "b"] && u.origin == "http://x")
    }
}

@Suite("RFC 9112 request head parsing")
struct RequestHeadTests {
    @Test("incomplete until the blank line; the head length excludes what follows")
    func completeness() {
        if case .incomplete = head("GET / HTTP/1.1\r\nHost: a\r\n") {} else { Issue.record("should be incomplete") }
        if case .complete(_, let length) = head("GET / HTTP/1.1\r\nHost: a\r\n\r\n\u{81}\u{80}") { #expect(length == 27) } else { Issue.record("should be complete") }
    }

    @Test("limits: head size and header count give 431")
    func limits() {
        let big = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 9000) + "\r\n\r\n"
        if case .failure(let e) = head(big) { #expect(e.status == 431) } else { Issue.record("accepted") }
        let many = "GET / HTTP/1.1\r\n" + (0..<70).map { "H\($0): v\r\n" }.joined() + "\r\n"
        if case .failure(let e) = head(many) { #expect(e.status == 431) } else { Issue.record("accepted") }
    }

    @Test("malformed heads give 400; other versions 505", arguments: [
        ("GET /\r\n\r\n", 400), ("GET  / HTTP/1.1\r\n\r\n", 400), ("GET / HTTP/1.1\r\nNo colon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400), ("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400), ("GET / HTTP/2.0\r\n\r\n", 505), ("GET / FTP/1.1\r\n\r\n", 400),
    ])
    func malformed(text: String, status: Int) {
        if case .failure(let e) = head(text) { #expect(e.status == status) } else { Issue.record("accepted \(text)") }
    }

    @Test("bytes that cannot start a head (a TLS ClientHello) are refused before the head is complete")
    func notHTTPAtAll() {
        let clientHello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]
        let result = clientHello.withUnsafeBytes { HTTPHeadParser.parse($0) }
        if case .failure(let e) = result { #expect(e.status == 400) } else { Issue.record("not refused: \(result)") }
        for partial in [" GET", "GE\u{1}T", "\r\n"] {
            if case .failure = head(partial) {} else { Issue.record("\(partial.debugDescription) not refused") }
        }
        // A start that may still become a head waits for the rest.
        for partial in ["G", "GET", "GET /", "HTTP/1.1 101", "PATCH"] {
            if case .incomplete = head(partial) {} else { Issue.record("\(partial) refused early") }
        }
    }

    @Test("a head dripped in byte by byte parses the same as in one piece")
    func dripFed() {
        let bytes = Array(sampleRequest.utf8)
        var result: HTTPHeadParseResult = .incomplete
        for n in 1...bytes.count {
            result = Array(bytes[..<n]).withUnsafeBytes { HTTPHeadParser.parse($0, scannedBefore: n - 1) }
            if n < bytes.count, case .incomplete = result {} else if n < bytes.count { Issue.record("early result at \(n)") }
        }
        if case .complete(let h, let length) = result {
            #expect(length == bytes.count)
            #expect(h.value("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ==")
        } else { Issue.record("not complete") }
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}

func failure<T>(_ result: Result<T, ClientHandshake.ResponseError>) -> ClientHandshake.ResponseError? {
    if case .failure(let error) = result { return error }
    return nil
}
