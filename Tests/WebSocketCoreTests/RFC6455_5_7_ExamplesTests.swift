import Testing
import WebSocketCore

/// The byte sequences printed in RFC 6455 §5.7, verbatim.
@Suite("RFC 6455 §5.7 Examples")
struct ExamplesTests {
    @Test("a single-frame unmasked text message (client role receives it)")
    func unmaskedHello() {
        #expect(parse([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], role: .client) == [.data(Array("Hello".utf8), .text, isFinal: true)])
    }

    @Test("a single-frame masked text message (server role receives it)")
    func maskedHello() {
        #expect(parse([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]) == [.data(Array("Hello".utf8), .text, isFinal: true)])
    }

    @Test("a fragmented unmasked text message")
    func fragmentedHello() {
        #expect(assemble(parse([0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f], role: .client)) == [.message(.text, Array("Hello".utf8))])
    }

    @Test("unmasked ping and masked pong, each with body Hello")
    func pingPong() {
        #expect(parse([0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], role: .client) == [.ping(Array("Hello".utf8))])
        #expect(parse([0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]) == [.pong(Array("Hello".utf8))])
    }

    @Test("256 bytes and 64 KiB binary messages in a single unmasked frame")
    func binaryExamples() {
        let header256: [UInt8] = [0x82, 0x7E, 0x01, 0x00]
        let p256 = [UInt8](repeating: 0xAB, count: 256)
        #expect(assemble(parse(header256 + p256, role: .client)) == [.message(.binary, p256)])
        let header64k: [UInt8] = [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        let p64k = [UInt8](repeating: 0xCD, count: 65536)
        #expect(assemble(parse(header64k + p64k, role: .client)) == [.message(.binary, p64k)])
    }

    @Test("FrameWriter produces the §5.7 masked Hello byte for byte")
    func writerMatchesExample() {
        var out = [UInt8](repeating: 0, count: 16)
        let key = [UInt8]([0x37, 0xfa, 0x21, 0x3d]).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        let n = Array("Hello".utf8).withUnsafeBytes { p in out.withUnsafeMutableBytes { FrameWriter.writeFrame(into: $0.baseAddress!, opcode: .text, fin: true, payload: p, maskKey: key) } }
        #expect(Array(out[0..<n]) == [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])
        let m = Array("Hello".utf8).withUnsafeBytes { p in out.withUnsafeMutableBytes { FrameWriter.writeFrame(into: $0.baseAddress!, opcode: .text, fin: true, payload: p) } }
        #expect(Array(out[0..<m]) == [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
    }
}
