import Testing
import WebSocketCore

@Suite("RFC 6455 §5.2 Base Framing Protocol")
struct BaseFramingTests {
    @Test("payload length boundaries round-trip: 0, 125, 126, 127, 65535, 65536", arguments: [0, 125, 126, 127, 65535, 65536])
    func lengthBoundaries(length: Int) {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let events = assemble(parse(frame(0x2, payload), ringCapacity: 4096))
        #expect(events == [.message(.binary, payload)])
    }

    @Test("header length follows the 7-bit length code and the mask bit")
    func headerLengths() {
        #expect(FrameHeader.length(firstTwoBytes: 0x81, 0x05) == 2)
        #expect(FrameHeader.length(firstTwoBytes: 0x81, 0x85) == 6)
        #expect(FrameHeader.length(firstTwoBytes: 0x82, 0x7E) == 4)
        #expect(FrameHeader.length(firstTwoBytes: 0x82, 0xFE) == 8)
        #expect(FrameHeader.length(firstTwoBytes: 0x82, 0x7F) == 10)
        #expect(FrameHeader.length(firstTwoBytes: 0x82, 0xFF) == 14)
    }

    @Test("16- and 64-bit lengths decode big-endian")
    func extendedLengths() {
        let h16 = [UInt8]([0x82, 0x7E, 0x01, 0x00]).withUnsafeBytes { FrameHeader.decode($0.baseAddress!) }
        #expect(h16.payloadLength == 256 && h16.headerLength == 4 && !h16.masked)
        let h64 = [UInt8]([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]).withUnsafeBytes { FrameHeader.decode($0.baseAddress!) }
        #expect(h64.payloadLength == 65536 && h64.headerLength == 10)
    }

    @Test("a 64-bit length with the most significant bit set is a protocol error (2^63)")
    func length64MSB() {
        let bytes: [UInt8] = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]
        #expect(parse(bytes) == [.failure(1002)])
    }

    @Test("nonzero RSV bits without an extension are a protocol error", arguments: [UInt8(1), 2, 4, 7])
    func rsvBits(rsv: UInt8) {
        #expect(parse(frame(0x1, Array("x".utf8), rsv: rsv)) == [.failure(1002)])
    }

    @Test("reserved opcodes are a protocol error", arguments: [UInt8(3), 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    func reservedOpcodes(opcode: UInt8) {
        #expect(parse(frame(opcode, [])) == [.failure(1002)])
    }

    @Test("§5.1: a server fails an unmasked frame, a client a masked one")
    func maskingDirection() {
        #expect(parse(frame(0x1, Array("hi".utf8), mask: nil), role: .server) == [.failure(1002)])
        #expect(parse(frame(0x1, Array("hi".utf8)), role: .client) == [.failure(1002)])
        #expect(assemble(parse(frame(0x1, Array("hi".utf8), mask: nil), role: .client)) == [.message(.text, Array("hi".utf8))])
    }

    @Test("a message over maxMessageSize fails with 1009 before its payload arrives")
    func messageTooBig() {
        let header = Array(frame(0x2, [UInt8](repeating: 1, count: 2000)).prefix(8))
        #expect(parse(header, maxMessageSize: 1000) == [.failure(1009)])
        // Counted across fragments (§7.4.1 1009 is about the message).
        let fragments = frame(0x2, [UInt8](repeating: 1, count: 600), fin: false) + frame(0x0, [UInt8](repeating: 1, count: 600))
        let events = parse(fragments, maxMessageSize: 1000)
        #expect(events.last == .failure(1009))
        #expect(assemble(parse(frame(0x2, [UInt8](repeating: 1, count: 1000)), maxMessageSize: 1000)).count == 1)
    }

    @Test("FrameWriter headers decode to what was written, for every length class")
    func writerRoundTrip() {
        for length in [0, 1, 125, 126, 127, 65535, 65536, 1 << 20] {
            for key: UInt32? in [nil, 0xA1B2_C3D4] {
                var scratch = [UInt8](repeating: 0, count: 14)
                let n = scratch.withUnsafeMutableBytes {
                    FrameWriter.writeHeader(into: $0.baseAddress!, opcode: .binary, fin: false, payloadLength: length, maskKey: key)
                }
                #expect(n == FrameWriter.headerLength(payloadLength: length, masked: key != nil))
                let h = scratch.withUnsafeBytes { FrameHeader.decode($0.baseAddress!) }
                #expect(h.payloadLength == UInt64(length) && h.headerLength == n && !h.fin && h.opcode == .binary)
                #expect(h.masked == (key != nil) && h.maskKey == (key ?? 0))
            }
        }
    }

    @Test("a header built on the stack by withHeader decodes to what was asked, for every length form",
          arguments: [0, 125, 126, 65535, 65536, 70_000])
    func stackHeader(length: Int) {
        for key: UInt32? in [nil, 0xA1B2_C3D4] {
            let h = FrameWriter.withHeader(opcode: .binary, fin: false, payloadLength: length, maskKey: key) { raw in
                #expect(raw.count == FrameWriter.headerLength(payloadLength: length, masked: key != nil))
                return FrameHeader.decode(raw.baseAddress!)
            }
            #expect(h.opcode == .binary && !h.fin && h.payloadLength == UInt64(length))
            #expect(h.masked == (key != nil) && h.maskKey == (key ?? 0))
        }
    }
}
