import Testing
import WebSocketCore
@testable import WebSocketCompression

/// RFC 7692 §7.2: compressing and decompressing messages, through the state
/// machine as a connection drives it.
@Suite("RFC 7692 §7.2: the permessage-deflate codec")
struct CodecTests {
    static let hello = Array("Hello".utf8)

    /// A server-side extension, as the browser's offer makes it (the client
    /// keeps its context, window 12; the server keeps none).
    func serverExtension(_ options: CompressionOptions = CompressionOptions(),
                         offer: String = "permessage-deflate; client_max_window_bits") -> any MessageExtension {
        let offers = ExtensionOffer.parse([Substring(offer)])!
        return PermessageDeflate(options: options).accept(offers)!.extension
    }

    @Test("§7.2.3.1: \"Hello\" compressed in one frame")
    func example1() {
        let h = DeflateHarness(.server, ext: serverExtension())
        #expect(h.feed(h.frame(0x1, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], rsv1: true)) == [.message(.text, Self.hello)])
        // Sent compressed by this end, "Hello" is the same bytes.
        #expect(encodeMessage(serverExtension(), Self.hello) == [[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]])
    }

    @Test("§7.2.3.1: the same compressed message split over two fragments")
    func example1Fragmented() {
        let h = DeflateHarness(.server, ext: serverExtension())
        let wire = h.frame(0x1, [0xf2, 0x48, 0xcd], fin: false, rsv1: true) + h.frame(0x0, [0xc9, 0xc9, 0x07, 0x00])
        #expect(h.feed(wire) == [.message(.text, Self.hello)])
    }

    @Test("§7.2.3.2: a second \"Hello\" that refers back to the first, with context takeover")
    func example2() {
        let h = DeflateHarness(.server, ext: serverExtension())
        let first = h.frame(0x1, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], rsv1: true)
        let second = h.frame(0x1, [0xf2, 0x00, 0x11, 0x00, 0x00], rsv1: true)
        #expect(h.feed(first + second) == [.message(.text, Self.hello), .message(.text, Self.hello)])
        // This end, asked to keep its context, refers back the same way.
        var options = CompressionOptions()
        options.ownContextTakeover = true
        let ext = serverExtension(options)
        #expect(encodeMessage(ext, Self.hello) == [[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]])
        #expect(encodeMessage(ext, Self.hello) == [[0xf2, 0x00, 0x11, 0x00, 0x00]])
    }

    @Test("§7.2.3.3: a stored (uncompressed) DEFLATE block")
    func example3() {
        let h = DeflateHarness(.server, ext: serverExtension())
        let payload: [UInt8] = [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]
        #expect(h.feed(h.frame(0x1, payload, rsv1: true)) == [.message(.text, Self.hello)])
    }

    @Test("§7.2.3.4: a final DEFLATE block (BFINAL), then the next message still decodes with the kept context")
    func example4() {
        let h = DeflateHarness(.server, ext: serverExtension())
        let final = h.frame(0x1, [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00], rsv1: true)
        let next = h.frame(0x1, [0xf2, 0x00, 0x11, 0x00, 0x00], rsv1: true)
        #expect(h.feed(final + next) == [.message(.text, Self.hello), .message(.text, Self.hello)])
        // The same with the final block's trailing byte in a frame of its own.
        let split = DeflateHarness(.server, ext: serverExtension())
        let fragments = split.frame(0x1, [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], fin: false, rsv1: true)
            + split.frame(0x0, [0x00])
        #expect(split.feed(fragments + split.frame(0x1, [0xf2, 0x00, 0x11, 0x00, 0x00], rsv1: true))
            == [.message(.text, Self.hello), .message(.text, Self.hello)])
    }

    @Test("§7.2.3.5: two DEFLATE blocks in one message")
    func example5() {
        let h = DeflateHarness(.server, ext: serverExtension())
        let payload: [UInt8] = [0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]
        #expect(h.feed(h.frame(0x1, payload, rsv1: true)) == [.message(.text, Self.hello)])
    }

    @Test("§7.2.3.6: an empty message is the single byte 00, both ways")
    func emptyMessage() {
        #expect(encodeMessage(serverExtension(), []) == [[0x00]])
        let h = DeflateHarness(.server, ext: serverExtension())
        #expect(h.feed(h.frame(0x2, [0x00], rsv1: true)) == [.message(.binary, [])])
        #expect(h.feed(h.frame(0x2, [], rsv1: true)) == [.message(.binary, [])])
    }

    static let json: [UInt8] = Array((0..<300).map { "{\"id\":\($0),\"name\":\"item \($0)\",\"tags\":[\"a\",\"b\"]}," }.joined().utf8)

    @Test("a compressed message split at every byte, over two reads, decodes the same")
    func splitAtEveryByte() throws {
        let compressed = rawDeflate(Self.json, windowBits: 12)
        let reference = DeflateHarness(.server, ext: serverExtension())
        let wire = reference.frame(0x1, compressed, rsv1: true)
        for split in 1..<wire.count {
            let h = DeflateHarness(.server, ext: serverExtension())
            var events = h.feed(Array(wire[..<split]))
            events += h.feed(Array(wire[split...]))
            #expect(events == [.message(.text, Self.json)], "split at \(split)")
            if events != [.message(.text, Self.json)] { break }
        }
    }

    @Test("a message larger than the receive ring streams through it in pieces")
    func largerThanTheRing() {
        var seed: UInt32 = 12345
        let big: [UInt8] = (0..<200_000).map { _ in
            seed = seed &* 1_103_515_245 &+ 12345
            return UInt8(ascii: "a") + UInt8((seed >> 16) & 15)
        }
        let compressed = rawDeflate(big)
        let h = DeflateHarness(.server, ext: serverExtension(offer: "permessage-deflate"))
        let wire = h.frame(0x2, compressed, rsv1: true)
        #expect(wire.count > 4096)
        #expect(h.feed(wire, piece: 1000) == [.message(.binary, big)])
        #expect(h.largestChunk <= DeflatePool.inflateStep)
    }

    @Test("a compressed bomb fails with 1009 after one step of output past the limit")
    func bomb() {
        // 64 MiB of zeros compress to about 64 KiB.
        let zeros = [UInt8](repeating: 0, count: 64 << 20)
        let compressed = rawDeflate(zeros)
        #expect(compressed.count < 100_000)
        let h = DeflateHarness(.server, ext: serverExtension(), maxMessageSize: 1 << 20)
        #expect(h.feed(h.frame(0x2, compressed, rsv1: true)) == [.closed(1009)])
        #expect(h.deliveredBytes <= 1 << 20)
    }

    @Test("invalid compressed data fails with 1007; invalid UTF-8 after inflating fails with 1007")
    func badData() {
        let h = DeflateHarness(.server, ext: serverExtension())
        #expect(h.feed(h.frame(0x2, [0xff, 0xff, 0xff, 0xff], rsv1: true)) == [.closed(1007)])
        let text = DeflateHarness(.server, ext: serverExtension())
        #expect(text.feed(text.frame(0x1, rawDeflate([0x48, 0xC3, 0x28, 0x49]), rsv1: true)) == [.closed(1007)])
    }

    @Test("RSV1 on a continuation frame, on a control frame, or with nothing negotiated: 1002")
    func rsvMisuse() {
        let h = DeflateHarness(.server, ext: serverExtension())
        #expect(h.feed(h.frame(0x1, [0xf2], fin: false, rsv1: true) + h.frame(0x0, [0x48], rsv1: true)) == [.closed(1002)])
        let ping = DeflateHarness(.server, ext: serverExtension())
        #expect(ping.feed(ping.frame(0x9, [], rsv1: true)) == [.closed(1002)])
        let plain = DeflateHarness(.server, ext: nil)
        #expect(plain.feed(plain.frame(0x1, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], rsv1: true)) == [.closed(1002)])
        // A message without RSV1 passes uncompressed on a compressing connection.
        let mixed = DeflateHarness(.server, ext: serverExtension())
        #expect(mixed.feed(mixed.frame(0x1, Self.hello)) == [.message(.text, Self.hello)])
    }

    @Test("round trips between the two ends, every context setting, whole and fragmented sends",
          arguments: [(false, false), (true, false), (false, true), (true, true)])
    func roundTrips(serverContext: Bool, clientContext: Bool) throws {
        // (false, false) is the shared extension, lending per message.
        var server = CompressionOptions()
        server.ownContextTakeover = serverContext
        server.peerContextTakeover = clientContext
        server.level = 1
        let pair = try #require(negotiatedPair(server: server))
        let messages: [[UInt8]] = [Self.json, Self.hello, [], Array(Self.json.reversed()), Array(repeating: 7, count: 300_000)]
        for pieces in [1, 3] {
            for message in messages {
                // Client to server, then server to client.
                for (from, to, role) in [(pair.client, pair.server, Role.server), (pair.server, pair.client, Role.client)] {
                    let steps = encodeMessage(from, message, pieces: pieces)
                    let receiver = DeflateHarness(role, ext: to)
                    var wire: [UInt8] = []
                    for (index, step) in steps.enumerated() {
                        wire += receiver.frame(index == 0 ? 0x2 : 0x0, step, fin: index == steps.count - 1, rsv1: index == 0)
                    }
                    #expect(receiver.feed(wire) == [.message(.binary, message)])
                }
            }
        }
    }

    @Test("without context takeover the loop's pool lends one stream per direction and gets it back")
    func poolLends() throws {
        var server = CompressionOptions()
        server.peerContextTakeover = false
        let negotiator = PermessageDeflate(options: server)
        let offers = ExtensionOffer.parse(["permessage-deflate; client_max_window_bits"])!
        let exts = (0..<3).map { _ in negotiator.accept(offers)!.extension }
        for ext in exts {
            let h = DeflateHarness(.server, ext: ext)
            #expect(h.feed(h.frame(0x1, rawDeflate(Self.json), rsv1: true)) == [.message(.text, Self.json)])
            _ = encodeMessage(ext, Self.json)
        }
        #expect(negotiator.pool.idleStreams == (inflaters: 1, deflaters: 1))
        // No context either way: one shared extension for all three, and one
        // per-message instance lent in turn and given back.
        let shared = try #require(exts.first as? SharedDeflateExtension)
        #expect(exts.allSatisfy { $0 === shared })
        #expect(shared.lender.idleInstances == 1)
    }

    @Test("no context either way: a message that spans reads keeps its instance; another connection borrows a second")
    func lendingAcrossReads() throws {
        var server = CompressionOptions()
        server.peerContextTakeover = false
        let negotiator = PermessageDeflate(options: server)
        let offers = ExtensionOffer.parse(["permessage-deflate"])!
        let ext = try #require(negotiator.accept(offers)?.extension as? SharedDeflateExtension)
        let a = DeflateHarness(.server, ext: ext)
        let b = DeflateHarness(.server, ext: ext)
        let wireA = a.frame(0x1, rawDeflate(Self.json), rsv1: true)
        let wireB = b.frame(0x1, rawDeflate(Array(Self.json.reversed())), rsv1: true)
        // A's message is half read when B's arrives whole.
        #expect(a.feed(Array(wireA.prefix(wireA.count / 2))) == [])
        #expect(b.feed(wireB) == [.message(.text, Array(Self.json.reversed()))])
        #expect(a.feed(Array(wireA.dropFirst(wireA.count / 2))) == [.message(.text, Self.json)])
        #expect(ext.lender.idleInstances == 2)
        // A connection lost mid-message gives its instance back too.
        let c = DeflateHarness(.server, ext: ext)
        #expect(c.feed(Array(wireA.prefix(wireA.count / 2))) == [])
        #expect(ext.lender.idleInstances == 1)
        _ = c.machine.connectionLost(now: 0)
        #expect(ext.lender.idleInstances == 2)
    }
}
