import Foundation
import Testing
import WebSocketServer

@Suite("HTTP: the upgrade path's plain answers and the static files", .serialized)
struct HTTPTests {
    static func staticRoot() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("uvws-static-\(getpid())")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try "<h1>index</h1>".write(to: dir.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try "body{}".write(to: dir.appendingPathComponent("sub/style.css"), atomically: true, encoding: .utf8)
        return dir.path
    }

    func request(_ port: Int, _ text: String) throws -> (status: Int, head: String, body: String) {
        let client = try RawClient(port: port)
        // Read to the end: the server keeps HTTP/1.1 connections open unless told.
        try client.send(text.replacingOccurrences(of: "HTTP/1.1\r\n", with: "HTTP/1.1\r\nConnection: close\r\n"))
        let response = String(decoding: try client.receiveAll(), as: UTF8.self)
        let parts = response.components(separatedBy: "\r\n\r\n")
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, parts.first ?? "", parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test("a plain HTTP request to /ws gets 400")
    func plainRequestToWebSocketPath() throws {
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.staticRoot())
        defer { harness.stop() }
        #expect(try request(harness.port, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").status == 400)
    }

    @Test("static files: / is index.html with its content type; HEAD; 404; 405")
    func staticFiles() throws {
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.staticRoot())
        defer { harness.stop() }
        let index = try request(harness.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(index.status == 200)
        #expect(index.head.contains("Content-Type: text/html; charset=utf-8"))
        #expect(index.body == "<h1>index</h1>")
        let css = try request(harness.port, "GET /sub/style.css?v=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(css.status == 200 && css.head.contains("text/css") && css.body == "body{}")
        let head = try request(harness.port, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(head.status == 200 && head.head.contains("Content-Length: 14") && head.body.isEmpty)
        #expect(try request(harness.port, "GET /missing.txt HTTP/1.1\r\nHost: x\r\n\r\n").status == 404)
        #expect(try request(harness.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").status == 405)
    }

    @Test("path traversal is refused, plain, encoded and absolute", arguments: [
        "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/sub/..%2f..%2fetc/passwd", "/%2E%2E/etc/passwd",
        "//etc/passwd", "/sub/%2e%2e/%2e%2e/etc/hostname", "/..\\..\\etc\\passwd", "/%00index.html",
    ])
    func traversal(path: String) throws {
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.staticRoot())
        defer { harness.stop() }
        let response = try request(harness.port, "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(response.status == 400 || response.status == 404, "\(path) -> \(response.status)")
        #expect(!response.body.contains("root:"))
    }

    @Test("malformed and oversized heads: 400 and 431; a wrong version: 426 with Sec-WebSocket-Version")
    func badHeads() throws {
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.staticRoot())
        defer { harness.stop() }
        #expect(try request(harness.port, "GARBAGE\r\n\r\n").status == 400)
        let huge = "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 10000) + "\r\n\r\n"
        #expect(try request(harness.port, huge).status == 431)
        let v8 = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        let r = try request(harness.port, v8)
        #expect(r.status == 426 && r.head.contains("Sec-WebSocket-Version: 13"))
    }
}

@Suite("HTTP answers end on the close timeout")
struct HTTPDrainTests {
    @Test("after an HTTP answer, a peer that never closes is dropped at the close timeout")
    func drainTimesOut() throws {
        var options = WebSocketOptions()
        options.closeTimeout = .milliseconds(300)
        // Keep-alive off: the drain must not depend on it (it once did, and
        // then waited for the peer's FIN forever).
        options.keepAliveInterval = .zero
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        let client = try RawClient(port: harness.port)
        try client.send("GET /no-such-route HTTP/1.1\r\nHost: x\r\n\r\n")
        let started = Date()
        // The response, then the server's FIN (it shuts down its side)...
        var received: [UInt8] = []
        while true {
            let chunk = try client.receive()
            if chunk.isEmpty { break }
            received += chunk
        }
        let text = String(decoding: received, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 404"))
        // ...and while we keep our side open, the server closes at the timeout.
        #expect(harness.metrics.connectionsOpen == 1)
        let deadline = Date().addingTimeInterval(3)
        while harness.metrics.connectionsOpen > 0 && Date() < deadline { usleep(20_000) }
        #expect(harness.metrics.connectionsOpen == 0)
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed > 0.25 && elapsed < 2, "closed after \(elapsed) s")
    }
}
