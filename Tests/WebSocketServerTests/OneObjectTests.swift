import Foundation
import Testing
@testable import WebSocketRuntime
import WebSocketServer

/// glibc's size of the chunk `pointer` was allocated as (in <malloc.h>,
/// which the Glibc module does not bring in).
@_silgen_name("malloc_usable_size")
private func mallocUsableSize(_ pointer: UnsafeMutableRawPointer) -> Int

/// A connection is one object, in one allocation, with libuv's TCP handle
/// inside it (docs/architecture.md, "One socket, one object").
@Suite("One object per socket")
struct OneObjectTests {
    /// Records, on the loop thread, where each opened connection's object
    /// and handle are.
    final class Recorder: WebSocketHandler {
        struct Layout {
            var object: UInt
            var chunk: Int
            var handle: UInt
            var handleData: UInt
            var handleSize: Int
        }
        var layouts: [Layout] = []

        func didReceive(_ connection: WebSocketConnection<Recorder>, chunk: UnsafeRawBufferPointer,
                        type: MessageType, isFinal: Bool) {}

        func didOpen(_ connection: WebSocketConnection<Recorder>) {
            let object = Unmanaged.passUnretained(connection).toOpaque()
            let handle = connection.handle.raw
            layouts.append(Layout(object: UInt(bitPattern: object), chunk: mallocUsableSize(object),
                                  handle: UInt(bitPattern: handle),
                                  handleData: UInt(bitPattern: handle.pointee.data),
                                  handleSize: MemoryLayout.size(ofValue: handle.pointee)))
        }
    }

    @Test("the handle lies inside the connection's own allocation, points back at it, and the whole is one 544-byte chunk (536 usable)")
    func oneAllocation() throws {
        let handler = Recorder()
        let harness = try ServerHarness(handler: handler)
        defer { harness.stop() }
        let clients = try (0..<3).map { _ in try TestClient(port: harness.port) }
        let layouts = harness.onLoop { _ in handler.layouts }
        #expect(layouts.count == clients.count)
        for layout in layouts {
            let end = layout.object + UInt(layout.chunk)
            #expect(layout.handle > layout.object && layout.handle + UInt(layout.handleSize) <= end)
            #expect(layout.handleData == layout.object)
            // 16 B of object header, the 248 B handle and the connection's
            // state: docs/benchmarks.md, "Idle memory", has the breakdown.
            #expect(layout.chunk <= 536, "a \(layout.chunk)-byte chunk")
        }
    }
}
