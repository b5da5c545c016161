import Testing
import WebSocketBackplane
import WebSocketCore

@Suite("The backplane's wire format, gaps and URLs")
struct BackplaneFormatTests {
    @Test("a message's head round-trips, and other bytes on the channel are not taken for one")
    func format() {
        let node = NodeIdentity(high: 0x0102_0304_0506_0708, low: 0x1112_1314_1516_1718)
        let head = UnsafeMutableRawBufferPointer.allocate(byteCount: BackplaneMessage.headLength, alignment: 8)
        defer { head.deallocate() }
        BackplaneMessage.writeHead(node: node, sequence: 0x0A0B_0C0D_0E0F_1011, type: .text, into: head)
        // "UVW1", the identity and the sequence big-endian, then the type.
        #expect(Array(head) == Array("UVW1".utf8) + [1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                                                      0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 1])
        let wire = Array(head) + Array("hello".utf8)
        wire.withUnsafeBytes { bytes in
            let message = BackplaneMessage.decode(bytes)
            #expect(message?.node == node)
            #expect(message?.sequence == 0x0A0B_0C0D_0E0F_1011)
            #expect(message?.type == .text)
            #expect(message.map { Array($0.payload) } == Array("hello".utf8))
        }
        for other in [Array("hello".utf8), Array("UVW2".utf8) + [UInt8](repeating: 0, count: 30),
                      Array(head.prefix(28)), Array(head.prefix(28)) + [3]] {
            #expect(other.withUnsafeBytes { BackplaneMessage.decode($0) } == nil)
        }
    }

    @Test("gaps: what each publisher skipped on each topic, nothing for the first seen or a repeat")
    func gaps() {
        var tracker = GapTracker()
        let a = NodeIdentity(high: 1, low: 1), b = NodeIdentity(high: 2, low: 2)
        #expect(tracker.record(node: a, topic: "t", sequence: 5) == 0)   // joined late: nothing missed
        #expect(tracker.record(node: a, topic: "t", sequence: 6) == 0)
        #expect(tracker.record(node: a, topic: "t", sequence: 10) == 3)  // 7, 8, 9
        #expect(tracker.record(node: a, topic: "t", sequence: 10) == 0)  // a repeat
        #expect(tracker.record(node: a, topic: "t", sequence: 9) == 0)   // late, not a gap
        #expect(tracker.record(node: b, topic: "t", sequence: 1) == 0)   // another publisher
        #expect(tracker.record(node: a, topic: "u", sequence: 1) == 0)   // another topic
        #expect(tracker.record(node: b, topic: "t", sequence: 3) == 1)
        tracker.forget(topic: "t")
        #expect(tracker.record(node: a, topic: "t", sequence: 20) == 0)  // afresh after a resubscription
        #expect(tracker.record(node: a, topic: "u", sequence: 3) == 1)   // "u" was kept
    }

    @Test("redis:// URLs: host, port, user, password, database; malformed ones refused")
    func urls() throws {
        #expect(try RedisURL(parsing: "redis://127.0.0.1") == RedisURL(host: "127.0.0.1"))
        #expect(try RedisURL(parsing: "redis://localhost:6380/3") == RedisURL(host: "localhost", port: 6380, database: 3))
        #expect(try RedisURL(parsing: "redis://:s%40cret@h:1/2") == RedisURL(host: "h", port: 1, password: "s@cret", database: 2))
        #expect(try RedisURL(parsing: "redis://ann:pw@[::1]:7000") == RedisURL(host: "::1", port: 7000, user: "ann", password: "pw"))
        #expect(try RedisURL(parsing: "redis://pw@h") == RedisURL(host: "h", password: "pw"))
        #expect("\(try RedisURL(parsing: "redis://:secret@h/1"))" == "redis://:***@h:6379/1")
        for bad in ["http://h", "redis://", "redis://h:0", "redis://h:70000", "redis://h:x", "redis://h/-1", "redis://h/x", "redis://[::1"] {
            #expect(throws: RedisURL.ParseError.self, "\(bad)") { try RedisURL(parsing: bad) }
        }
    }
}
