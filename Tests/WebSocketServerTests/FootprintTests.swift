import Testing
@testable import WebSocketRuntime
import WebSocketServer

@_silgen_name("malloc_usable_size") func mallocUsableSize(_ p: UnsafeMutableRawPointer?) -> Int

/// What an idle connection costs in objects, checked where it is decided: the
/// connection and its stream (the libuv handle, 248 bytes, and the server's
/// table entries come on top). docs/benchmarks.md has the RSS figure.
@Suite("Idle footprint")
struct FootprintTests {
    @Test("an open connection and its stream fit their malloc size classes (272 and 128 bytes)")
    func objectSizes() throws {
        let harness = try ServerHarness(handler: EchoHandler())
        defer { harness.stop() }
        let client = try TestClient(port: harness.port)
        try client.sendText("hello")
        #expect(try client.nextMessage() == .message(.text, Array("hello".utf8)))
        let sizes: [(Int, Int)] = harness.onLoop { server in
            var out: [(Int, Int)] = []
            server.forEachOpenConnection { c in
                out.append((mallocUsableSize(Unmanaged.passUnretained(c).toOpaque()),
                            mallocUsableSize(Unmanaged.passUnretained(c.stream).toOpaque())))
            }
            return out
        }
        #expect(sizes.count == 1)
        #expect((sizes.first?.0 ?? .max) <= 264, "connection: \(String(describing: sizes.first?.0)) bytes")
        #expect((sizes.first?.1 ?? .max) <= 120, "stream: \(String(describing: sizes.first?.1)) bytes")
    }
}
