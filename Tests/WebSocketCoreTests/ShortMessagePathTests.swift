import Testing
import WebSocketCore

/// The parser takes a whole short message (one frame, FIN, payload under 126
/// bytes, in one piece in the ring) in one pass, and every other frame through
/// the general path. These tests feed the same frames both ways: contiguous
/// (the one-pass path) and split by the ring's wrap point or by reads (the
/// general path, which hands a payload out in pieces as it arrives), and
/// expect the same messages, failures included.
@Suite("Short whole messages: one pass and the general path agree")
struct ShortMessagePathTests {
    /// Frames of every short length, both types, for the given role.
    static func frames(role: Role, seed: UInt64) -> (bytes: [UInt8], expected: [Assembled]) {
        var rng = SplitMix64(seed: seed)
        var bytes: [UInt8] = []
        var expected: [Assembled] = []
        for length in 0..<126 {
            let text = length % 2 == 0
            let payload: [UInt8] = text ? (0..<length).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
                                        : (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let key: [UInt8]? = role == .server ? (0..<4).map { _ in UInt8.random(in: 0...255, using: &rng) } : nil
            bytes += frame(text ? 0x1 : 0x2, payload, mask: key)
            expected.append(.message(text ? .text : .binary, payload))
        }
        return (bytes, expected)
    }

    @Test("every short length, both roles: contiguous, split at every ring offset, and a byte at a time",
          arguments: [Role.server, Role.client])
    func sameEventsEveryWay(role: Role) {
        let (bytes, expected) = Self.frames(role: role, seed: 7)
        // In one piece every message comes out whole, in one event.
        let whole = parse(bytes, role: role, ringCapacity: 16384)
        #expect(whole.count == expected.count)
        #expect(assemble(whole) == expected)
        #expect(assemble(parse(bytes, role: role, piece: 1)) == expected)
        // A 256-byte ring started at each offset puts the wrap point inside
        // headers and payloads alike.
        for start in stride(from: 0, to: 256, by: 7) {
            #expect(assemble(parse(bytes, role: role, piece: 200, ringCapacity: 256, startOffset: start)) == expected)
        }
    }

    #if DEBUG
    @Test("the one-pass path takes every whole short message in one piece, and nothing else",
          arguments: [Role.server, Role.client])
    func onePassPathRuns(role: Role) {
        let (bytes, expected) = Self.frames(role: role, seed: 11)
        let mask: [UInt8]? = role == .server ? [1, 2, 3, 4] : nil
        // In one piece: all 126 messages take it.
        #expect(parseCountingOnePass(bytes, role: role, ringCapacity: 16384).onePass == expected.count)
        // A byte at a time only the first, empty, message is ever whole in
        // the ring (its header is all of it): the rest take the general path.
        #expect(parseCountingOnePass(bytes, role: role, piece: 1).onePass == 1)
        // Fragments, compressed frames (RSV1, with no extension here, fails
        // on the general path), control frames and 16-bit lengths do not.
        let others = frame(0x1, Array("ab".utf8), fin: false, mask: mask) + frame(0x0, Array("c".utf8), mask: mask)
            + frame(0x9, [7], mask: mask) + frame(0x2, [UInt8](repeating: 5, count: 126), mask: mask)
        let general = parseCountingOnePass(others, role: role, ringCapacity: 16384)
        #expect(general.onePass == 0)
        #expect(assemble(general.events) == [.message(.text, Array("abc".utf8)), .ping([7]),
                                             .message(.binary, [UInt8](repeating: 5, count: 126))])
        #expect(parseCountingOnePass(frame(0x2, [1], mask: mask, rsv: 4), role: role).onePass == 0)
    }
    #endif

    @Test("invalid UTF-8 in a short text message fails with 1007 both ways")
    func invalidText() {
        let bytes = frame(0x2, [1, 2]) + frame(0x1, [0x61, 0xC3, 0x28])
        let expected: [Assembled] = [.message(.binary, [1, 2]), .failure(1007)]
        #expect(assemble(parse(bytes)) == expected)
        #expect(assemble(parse(bytes, piece: 1)) == expected)
        // A text message cut short inside a character is invalid once it is whole.
        #expect(parse(frame(0x1, [0x61, 0xE2, 0x82])) == [.failure(1007)])
    }

    @Test("a short message over maxMessageSize fails with 1009 before delivery")
    func overLimit() {
        #expect(parse(frame(0x2, [UInt8](repeating: 9, count: 40)), maxMessageSize: 39) == [.failure(1009)])
        #expect(parse(frame(0x2, [UInt8](repeating: 9, count: 39)), maxMessageSize: 39)
            == [.data([UInt8](repeating: 9, count: 39), .binary, isFinal: true)])
    }

    @Test("frames the one-pass path must refuse still fail as the RFC says")
    func refusedShapes() {
        // §5.1: unmasked to a server, masked to a client.
        #expect(parse(frame(0x2, [1], mask: nil), role: .server) == [.failure(1002)])
        #expect(parse(frame(0x2, [1]), role: .client) == [.failure(1002)])
        // §5.2: RSV bits with no extension.
        #expect(parse(frame(0x2, [1], rsv: 4)) == [.failure(1002)])
        // §5.4: a whole new message inside an open fragmented one.
        #expect(parse(frame(0x1, Array("a".utf8), fin: false) + frame(0x2, [1])).last == .failure(1002))
    }
}
