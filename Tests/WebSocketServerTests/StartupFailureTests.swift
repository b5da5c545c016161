import Foundation
import Testing
import UVKit
import WebSocketClient
import WebSocketCore
import WebSocketServer

/// A server that cannot start must say why with a typed error, close what it
/// opened (every libuv handle, before it is freed) and leave the process able
/// to try again. A handle left open fails these tests twice: `loop.close()`
/// throws EBUSY, and releasing an open handle trips UVHandle's precondition.
@Suite("Start-up failures")
struct StartupFailureTests {
    /// A port some other socket holds for the length of `body`.
    func withTakenPort(_ body: (Int) throws -> Void) throws {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(holder, $0, length) == 0 && listen(holder, 4) == 0 && getsockname(holder, $0, &length) == 0
            }
        }
        try #require(bound)
        try body(Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test("listen on a taken port throws cannotListen; the released server leaves no handle, a new one serves")
    func portInUseThenAnotherPort() throws {
        try withTakenPort { taken in
            do {
                let server = try WebSocketServer(handler: EchoHandler())
                server.route(webSocket: "/ws")
                #expect {
                    try server.listen(host: "127.0.0.1", port: taken)
                } throws: { error in
                    guard case WebSocketServerError.cannotListen(let host, let port, let reason) = error else { return false }
                    return host == "127.0.0.1" && port == taken && reason == .addressInUse
                        && "\(error)" == "cannot listen on 127.0.0.1:\(taken): address already in use (EADDRINUSE)"
                }
                // The same server may try another port, and serve there.
                let port = try server.listen(host: "127.0.0.1", port: 0)
                #expect(port != taken && port > 0)
                server.shutdown()
                try server.run()
            }
            // A fresh server after a failed one, as an embedder retrying would.
            let harness = try ServerHarness(handler: EchoHandler())
            defer { harness.stop() }
            let client = try TestClient(port: harness.port)
            try client.sendText("still serving")
            #expect(try client.nextMessage() == .message(.text, Array("still serving".utf8)))
        }
    }

    @Test("a name that does not resolve throws hostNotFound")
    func unresolvableHost() throws {
        let server = try WebSocketServer(handler: EchoHandler())
        #expect {
            try server.listen(host: "nosuchhost.invalid", port: 0)
        } throws: { error in
            guard case WebSocketServerError.hostNotFound(let host, _) = error else { return false }
            return host == "nosuchhost.invalid" && "\(error)".hasPrefix("cannot resolve host nosuchhost.invalid: ")
        }
    }

    @Test("a missing static root throws staticRootNotFound")
    func missingStaticRoot() throws {
        let server = try WebSocketServer(handler: EchoHandler())
        #expect {
            try server.serveFiles(from: "/nonexistent/uvws")
        } throws: { error in
            guard case WebSocketServerError.staticRootNotFound(let path) = error else { return false }
            return path == "/nonexistent/uvws"
        }
    }

    @Test("servers released without running, on their own loop or a shared one, close every handle")
    func releasedUnused() throws {
        for _ in 0..<3 {
            let server = try WebSocketServer(handler: EchoHandler())
            _ = try server.listen(host: "127.0.0.1", port: 0)
            try server.shutdownOnSignals()
        }
        // On a shared loop the server cannot close the loop; the loop's own
        // close fails (EBUSY) if the server left a handle open.
        let loop = try EventLoop()
        do {
            let server = try WebSocketServer(handler: EchoHandler(), loop: loop)
            _ = try server.listen(host: "127.0.0.1", port: 0)
            _ = try WebSocketClient(handler: EchoHandler(), loop: loop)
        }
        _ = try WebSocketClient(handler: EchoHandler())
        loop.run()
        try loop.close()
    }
}
