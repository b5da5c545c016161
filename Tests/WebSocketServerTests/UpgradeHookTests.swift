import Foundation
import Testing
import UVKit
import WebSocketCore
import WebSocketServer

/// Who a chat connection is, as the upgrade hook decided.
struct ChatUser: Equatable {
    var name: String
    var room: String
}

/// Records each connection's `data` as `didOpen` sees it, and echoes.
final class ChatRecorder: WebSocketHandler {
    typealias ConnectionData = ChatUser
    let opened = Lock<[ChatUser?]>([])

    func didOpen(_ connection: WebSocketConnection<ChatRecorder>) {
        let data = connection.data
        opened.withLock { $0.append(data) }
    }

    func didReceive(_ connection: WebSocketConnection<ChatRecorder>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        connection.send(chunk, type: type, isFinal: isFinal)
    }
}

/// An upgrade request with the given extra header lines; returns the
/// response head (status and fields) and its body.
func rawUpgrade(port: Int, target: String, headers: [String] = []) throws -> (HTTPHead, String) {
    let client = try RawClient(port: port)
    var request = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    for line in headers { request += line + "\r\n" }
    try client.send(request + "\r\n")
    var received: [UInt8] = []
    while true {
        let chunk = try client.receive()
        received += chunk
        let parsed = received.withUnsafeBytes { HTTPHeadParser.parse($0) }
        if case .complete(let head, let length) = parsed {
            if head.startLine.1 == "101" { return (head, "") }
            // Error responses close the connection: read the body to the end.
            if !chunk.isEmpty { received += try client.receiveAll() }
            return (head, String(decoding: received[length...], as: UTF8.self))
        }
        if chunk.isEmpty { throw TestError("closed before a response head") }
    }
}

@Suite("The upgrade hook: the request decides before the 101", .serialized)
struct UpgradeHookTests {
    static func chatServer(_ handler: ChatRecorder) throws -> ServerHarness<ChatRecorder> {
        var options = WebSocketOptions()
        options.subprotocols = ["chat.v1"]
        let harness = try ServerHarness(options: options, handler: handler, routes: false)
        harness.onLoop { server in
            server.route(webSocket: "/chat") { request in
                guard let token = request.queryItem("token") ?? request.header("Authorization") else {
                    return .refuse(status: 401, headers: ["WWW-Authenticate: Bearer realm=\"chat\""], reason: "a token is needed")
                }
                if request.cookie("session") == "banned" { return .refuse(status: 403, reason: "banned") }
                guard let room = request.queryItem("room"), !room.isEmpty else {
                    return .refuse(status: 400, reason: "no room")
                }
                let chosen = request.offeredSubprotocols.contains("chat.v2") ? "chat.v2" : nil
                return .accept(subprotocol: chosen, data: ChatUser(name: token, room: room), headers: ["X-Room: \(room)"])
            }
            server.route(webSocket: "/open")
            server.route(webSocket: "/closed") { _ in .refuse(status: 404) }
            server.route(webSocket: "/broken") { request in
                request.queryItem("bad") == "status" ? .refuse(status: 200) : .accept(subprotocol: "never-offered")
            }
        }
        return harness
    }

    @Test("no token: 401 with WWW-Authenticate; a refused cookie: 403; no room: 400 with the reason")
    func refusals() throws {
        let handler = ChatRecorder()
        let harness = try Self.chatServer(handler)
        defer { harness.stop() }
        let (unauthorized, body) = try rawUpgrade(port: harness.port, target: "/chat?room=lobby")
        #expect(unauthorized.startLine.1 == "401")
        #expect(unauthorized.value("WWW-Authenticate") == "Bearer realm=\"chat\"")
        #expect(body.contains("a token is needed"))
        let (forbidden, _) = try rawUpgrade(port: harness.port, target: "/chat?token=ann&room=lobby",
                                            headers: ["Cookie: theme=dark; session=banned"])
        #expect(forbidden.startLine.1 == "403")
        let (noRoom, reason) = try rawUpgrade(port: harness.port, target: "/chat?token=ann")
        #expect(noRoom.startLine.1 == "400")
        #expect(reason.contains("no room"))
        #expect(handler.opened.withLock { $0.isEmpty })
    }

    @Test("typed data from the query (percent-decoded) is the connection's in didOpen; the hook's header is in the 101")
    func acceptedWithData() throws {
        let handler = ChatRecorder()
        let harness = try Self.chatServer(handler)
        defer { harness.stop() }
        let (head, _) = try rawUpgrade(port: harness.port, target: "/chat?token=Ann%20Lee&room=caf%C3%A9+bar",
                                       headers: ["Cookie: session=ok"])
        #expect(head.startLine.1 == "101")
        #expect(head.value("X-Room") == "café bar")
        #expect(waitUntil { handler.opened.withLock { $0.count } == 1 })
        #expect(handler.opened.withLock { $0 } == [ChatUser(name: "Ann Lee", room: "café bar")])
        // The Authorization header serves as well, and the hook's subprotocol wins.
        let (chosen, _) = try rawUpgrade(port: harness.port, target: "/chat?room=x",
                                         headers: ["Authorization: Bearer b", "Sec-WebSocket-Protocol: chat.v1, chat.v2"])
        #expect(chosen.value("Sec-WebSocket-Protocol") == "chat.v2")
    }

    @Test("two routes decide differently; a route without a hook accepts; an invalid answer is a 500")
    func routes() throws {
        let handler = ChatRecorder()
        let harness = try Self.chatServer(handler)
        defer { harness.stop() }
        let open = try TestClient(port: harness.port, path: "/open", subprotocols: ["chat.v1"])
        #expect(open.responseHead?.value("Sec-WebSocket-Protocol") == "chat.v1")
        try open.sendText("hi")
        #expect(try open.nextMessage() == .message(.text, Array("hi".utf8)))
        let (closed, _) = try rawUpgrade(port: harness.port, target: "/closed")
        #expect(closed.startLine.1 == "404")
        for target in ["/broken?bad=status", "/broken"] {
            let (broken, _) = try rawUpgrade(port: harness.port, target: target, headers: ["Sec-WebSocket-Protocol: chat.v1"])
            #expect(broken.startLine.1 == "500", "\(target)")
        }
        // The server kept serving throughout.
        let again = try TestClient(port: harness.port, path: "/open")
        try again.sendText("still")
        #expect(try again.nextMessage() == .message(.text, Array("still".utf8)))
    }

    @Test("query items and cookies parse as browsers send them")
    func parsing() throws {
        let seen = Lock<[String]>([])
        let harness = try ServerHarness(handler: ChatRecorder(), routes: false)
        defer { harness.stop() }
        harness.onLoop { server in
            server.route(webSocket: "/p") { request in
                let items = request.queryItems.map { "\($0.name)=\($0.value)" }
                let cookies = request.cookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                seen.withLock { $0 = [request.path, request.query ?? "-"] + items + cookies + ["\(request.peerAddress != nil)"] }
                return .refuse(status: 418)
            }
        }
        let (head, _) = try rawUpgrade(port: harness.port, target: "/p?a=1&b=x%2By+z&flag&a=2&bad=%zz",
                                       headers: ["Cookie: one=1; two=\"quoted\"", "cookie: one=ignored; three=3"])
        #expect(head.startLine.1 == "418")
        #expect(seen.withLock { $0 } == ["/p", "a=1&b=x%2By+z&flag&a=2&bad=%zz", "a=1", "b=x+y z", "flag=", "a=2", "bad=%zz",
                                         "one=1", "three=3", "two=quoted", "true"])
    }
}
