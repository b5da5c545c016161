import Testing
import WebSocketCore

@Suite("RFC 6455 §5.4 Fragmentation")
struct FragmentationTests {
    @Test("fragments join into one message and keep their end-of-message flags")
    func fragments() {
        let bytes = frame(0x1, Array("Hel".utf8), fin: false) + frame(0x0, Array("lo".utf8))
        let events = parse(bytes)
        #expect(events == [.data(Array("Hel".utf8), .text, isFinal: false), .data(Array("lo".utf8), .text, isFinal: true)])
    }

    @Test("control frames may come between fragments")
    func controlBetweenFragments() {
        let bytes = frame(0x1, Array("frag".utf8), fin: false) + frame(0x9, Array("p".utf8))
            + frame(0x0, Array("ment".utf8), fin: false) + frame(0xA, []) + frame(0x0, Array("ed".utf8))
        #expect(assemble(parse(bytes)) == [.ping(Array("p".utf8)), .pong([]), .message(.text, Array("fragmented".utf8))])
    }

    @Test("a continuation with no message started is a protocol error")
    func orphanContinuation() {
        #expect(parse(frame(0x0, Array("x".utf8))) == [.failure(1002)])
    }

    @Test("a new data frame inside an open fragmented message is a protocol error")
    func interleavedMessage() {
        let bytes = frame(0x1, Array("a".utf8), fin: false) + frame(0x1, Array("b".utf8))
        #expect(parse(bytes).last == .failure(1002))
    }

    @Test("empty fragments are delivered, the final one with its flag")
    func emptyFragments() {
        let bytes = frame(0x1, [], fin: false) + frame(0x0, [], fin: false) + frame(0x0, [])
        #expect(parse(bytes) == [.data([], .text, isFinal: false), .data([], .text, isFinal: false), .data([], .text, isFinal: true)])
    }

    @Test("a 16 MiB message streams through a 4 KiB ring as chunks, none larger than the ring")
    func largeMessageThroughSmallRing() {
        let size = 16 * 1024 * 1024
        var payload = [UInt8](repeating: 0, count: size)
        for i in stride(from: 0, to: size, by: 4096) { payload[i] = UInt8(truncatingIfNeeded: i >> 12) }
        let events = parse(frame(0x2, payload), piece: 1500, ringCapacity: 4096)
        var joined: [UInt8] = []
        joined.reserveCapacity(size)
        var finals = 0
        for case .data(let bytes, _, let isFinal) in events {
            #expect(bytes.count <= 4096)
            joined += bytes
            if isFinal { finals += 1 }
        }
        #expect(finals == 1)
        #expect(joined == payload)
    }
}
