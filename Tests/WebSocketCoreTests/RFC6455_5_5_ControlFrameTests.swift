import Testing
import WebSocketCore

@Suite("RFC 6455 §5.5 Control Frames")
struct ControlFrameTests {
    @Test("a control frame over 125 bytes is a protocol error")
    func tooLong() {
        #expect(parse(frame(0x9, [UInt8](repeating: 0, count: 126))) == [.failure(1002)])
        #expect(parse(frame(0x9, [UInt8](repeating: 7, count: 125))) == [.ping([UInt8](repeating: 7, count: 125))])
    }

    @Test("a fragmented control frame is a protocol error")
    func fragmentedControl() {
        #expect(parse(frame(0x9, [], fin: false)) == [.failure(1002)])
    }

    @Test("§5.5.1 close: code and reason are reported; nothing follows")
    func closeFrame() {
        let bytes = frame(0x8, closeBody(1000, "bye")) + frame(0x1, Array("late".utf8))
        #expect(parse(bytes) == [.close(1000, "bye")])
    }

    @Test("an empty close reports 1005 (no status received)")
    func emptyClose() {
        #expect(parse(frame(0x8, [])) == [.close(1005, "")])
    }

    @Test("a 1-byte close payload is a protocol error")
    func oneByteClose() {
        #expect(parse(frame(0x8, [0x03])) == [.failure(1002)])
    }

    @Test("close codes valid on the wire are accepted", arguments: [UInt16(1000), 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999])
    func validCodes(code: UInt16) {
        #expect(parse(frame(0x8, closeBody(code))) == [.close(code, "")])
    }

    @Test("§7.4: codes below 1000, 1004–1006, 1015, 1016–2999 and 5000+ are protocol errors",
          arguments: [UInt16(0), 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
    func invalidCodes(code: UInt16) {
        #expect(parse(frame(0x8, closeBody(code))) == [.failure(1002)])
    }

    @Test("a close reason that is not UTF-8 fails with 1007")
    func invalidReason() {
        #expect(parse(frame(0x8, closeBody(1000) + [0xCE, 0xBA, 0xE1, 0xBD])) == [.failure(1007)])
        #expect(parse(frame(0x8, closeBody(1000) + [0xFF])) == [.failure(1007)])
    }

    @Test("ClosePayload.write cuts a long reason at a code point boundary")
    func closeWriterCutsReason() {
        let reason = String(repeating: "é", count: 100)  // 200 bytes
        var out = [UInt8](repeating: 0, count: 125)
        let n = Array(reason.utf8).withUnsafeBytes { r in out.withUnsafeMutableBytes { ClosePayload.write(code: .normalClosure, reason: r, into: $0.baseAddress!) } }
        #expect(n <= 125)
        #expect(parse(frame(0x8, Array(out[0..<n]))) == [.close(1000, String(repeating: "é", count: (n - 2) / 2))])
        var empty = [UInt8](repeating: 0, count: 125)
        let m = empty.withUnsafeMutableBytes { ClosePayload.write(code: .noStatusReceived, reason: UnsafeRawBufferPointer(start: nil, count: 0), into: $0.baseAddress!) }
        #expect(m == 0)
    }
}
