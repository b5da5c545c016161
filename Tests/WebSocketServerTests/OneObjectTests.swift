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
            var instanceSize: Int
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
            // A class's metadata holds its instances' size as a 32-bit field
            // 24 bytes in, on Linux (no Objective-C words before it; Swift's
            // TypeMetadata ABI).
            let metadata = unsafeBitCast(type(of: connection), to: UnsafeRawPointer.self)
            let instanceSize = Int(metadata.load(fromByteOffset: 24, as: UInt32.self))
            layouts.append(Layout(object: UInt(bitPattern: object), chunk: mallocUsableSize(object),
                                  instanceSize: instanceSize,
                                  handle: UInt(bitPattern: handle),
                                  handleData: UInt(bitPattern: handle.pointee.data),
                                  handleSize: MemoryLayout.size(ofValue: handle.pointee)))
        }
    }

    @Test("the handle lies inside the connection's own allocation and points back at it; the object is at most 536 bytes")
    func oneAllocation() throws {
        let handler = Recorder()
        let harness = try ServerHarness(handler: handler)
        defer { harness.stop() }
        let clients = try (0..<3).map { _ in try TestClient(port: harness.port) }
        let layouts = harness.onLoop { _ in handler.layouts }
        #expect(layouts.count == clients.count)
        for layout in layouts {
            #expect(layout.instanceSize <= layout.chunk, "the object lies in the chunk malloc gave")
            #expect(layout.handle > layout.object
                    && layout.handle + UInt(layout.handleSize) <= layout.object + UInt(layout.instanceSize))
            #expect(layout.handleData == layout.object)
            // 16 B of object header, the 248 B handle and the connection's
            // state (docs/benchmarks.md, "Idle memory"): 534 B, a 544-byte
            // chunk; 536 is the most that still fits one.
            #expect(layout.instanceSize <= 536, "a \(layout.instanceSize)-byte object")
        }
    }
}
