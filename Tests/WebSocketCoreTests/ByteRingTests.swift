import Testing
import WebSocketCore

@Suite("ByteRing: the receive buffer")
struct ByteRingTests {
    @Test("empty: the whole capacity is writable in one piece from offset 0")
    func empty() {
        var ring = ByteRing(capacity: 256)
        defer { ring.deallocate() }
        #expect(ring.isEmpty && ring.writableRegion.count == 256)
        #expect(ring.writableRegion.baseAddress == UnsafeMutableRawPointer(ring.storage))
        ring.commitWrite(10)
        ring.consume(10)
        // An emptied ring restarts at 0 so the next read is not split.
        #expect(ring.writableRegion.baseAddress == UnsafeMutableRawPointer(ring.storage))
    }

    @Test("full: no writable region")
    func full() {
        var ring = ByteRing(capacity: 256)
        defer { ring.deallocate() }
        ring.commitWrite(256)
        #expect(ring.isFull && ring.writableRegion.count == 0)
        #expect([UInt8](repeating: 1, count: 4).withUnsafeBytes { ring.write($0) } == 0)
    }

    @Test("wraparound: writes continue at the start, reads see both pieces in order")
    func wraparound() {
        var ring = ByteRing(capacity: 256)
        defer { ring.deallocate() }
        let first = [UInt8](repeating: 0xAA, count: 200)
        #expect(first.withUnsafeBytes { ring.write($0) } == 200)
        ring.consume(150)
        let second = (0..<150).map { UInt8($0) }
        #expect(second.withUnsafeBytes { ring.write($0) } == 150)
        #expect(ring.count == 200)
        let (p, n) = ring.contiguousReadable(from: 0)
        #expect(n == 106)  // 50 old bytes + 56 new ones up to the end
        #expect(p.load(fromByteOffset: 50, as: UInt8.self) == 0)
        #expect(ring.byte(at: 199) == 149)
        // A wrapped span is made contiguous through the spill area.
        let q = ring.contiguousBytes(from: 100, length: 20)
        #expect((0..<20).map { q.load(fromByteOffset: $0, as: UInt8.self) } == Array(second[50..<70]))
        let w = ring.contiguousBytes(from: 40, length: 30)  // crosses the end
        #expect((0..<30).map { w.load(fromByteOffset: $0, as: UInt8.self) } == Array(repeating: 0xAA, count: 10) + Array(second[0..<20]))
    }

    @Test("move(to:) carries the readable bytes across the wrap point, as far as the target has room")
    func moveAcrossWrap() {
        var source = ByteRing(capacity: 256)
        var target = ByteRing(capacity: 256)
        defer { source.deallocate(); target.deallocate() }
        // Put the source's readable bytes across its end: 200 in, 180 out, 100 in.
        [UInt8](repeating: 9, count: 200).withUnsafeBytes { _ = source.write($0) }
        source.consume(180)
        let tail = (0..<100).map { UInt8($0) }
        tail.withUnsafeBytes { _ = source.write($0) }
        [UInt8](repeating: 7, count: 100).withUnsafeBytes { _ = target.write($0) }
        #expect(source.move(to: &target) == 120)
        #expect(source.isEmpty)
        #expect((0..<target.count).map { target.byte(at: $0) }
                == [UInt8](repeating: 7, count: 100) + [UInt8](repeating: 9, count: 20) + tail)
        // A full target takes what fits and leaves the rest.
        var small = ByteRing(capacity: 256)
        defer { small.deallocate() }
        #expect(target.move(to: &small) == 220)
        [UInt8](repeating: 1, count: 50).withUnsafeBytes { _ = source.write($0) }
        #expect(source.move(to: &small) == 36)
        #expect(source.count == 14 && small.isFull)
    }

    @Test("capacity(atLeast:) gives the smallest valid capacity")
    func capacityAtLeast() {
        #expect(ByteRing.capacity(atLeast: 0) == 256)
        #expect(ByteRing.capacity(atLeast: 256) == 256)
        #expect(ByteRing.capacity(atLeast: 257) == 512)
        #expect(ByteRing.capacity(atLeast: 70_000) == 131_072)
    }

    @Test("capacities must be powers of two of at least 256 (ReceiveBufferSize)")
    func capacities() {
        for c in [256, 4096, 1 << 16] {
            let ring = ByteRing(capacity: c)
            #expect(ring.capacity == c)
            ring.deallocate()
        }
    }
}

@Suite("Drip-feed: every split point")
struct DripFeedTests {
    static let stream: [UInt8] = frame(0x1, Array("Hello, world".utf8), fin: false) + frame(0x9, Array("ping!".utf8))
        + frame(0x0, Array(" and more".utf8)) + frame(0x2, (0..<300).map { UInt8(truncatingIfNeeded: $0) })
        + frame(0xA, []) + frame(0x2, [UInt8](repeating: 9, count: 70000), mask: [1, 2, 3, 4])
        + frame(0x1, Array("é€𐍈".utf8)) + frame(0x8, closeBody(1000, "done"))

    static var expected: [Assembled] { assemble(parse(stream)) }

    @Test("the reference parse has every message")
    func reference() {
        #expect(DripFeedTests.expected == [
            .ping(Array("ping!".utf8)), .message(.text, Array("Hello, world and more".utf8)),
            .message(.binary, (0..<300).map { UInt8(truncatingIfNeeded: $0) }), .pong([]),
            .message(.binary, [UInt8](repeating: 9, count: 70000)), .message(.text, Array("é€𐍈".utf8)), .close(1000, "done"),
        ])
    }

    @Test("byte by byte")
    func byteByByte() {
        #expect(assemble(parse(DripFeedTests.stream, piece: 1)) == DripFeedTests.expected)
    }

    @Test("two pieces, split at every point of the first 400 bytes")
    func everySplitPoint() {
        let stream = DripFeedTests.stream
        for split in 1..<400 {
            var events: [Owned] = []
            var ring = ByteRing(capacity: 4096)
            var parser = FrameParser(role: .server)
            for piece in [Array(stream[..<split]), Array(stream[split...])] {
                var offset = 0
                while offset < piece.count {
                    let region = ring.writableRegion
                    let n = min(region.count, piece.count - offset)
                    piece.withUnsafeBytes { region.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
                    ring.commitWrite(n)
                    offset += n
                    drain(&parser, &ring, into: &events)
                }
            }
            ring.deallocate()
            #expect(assemble(events) == DripFeedTests.expected, "split at \(split)")
        }
    }

    @Test("odd piece sizes and ring start offsets (wrap at every place)")
    func piecesAndWraps() {
        for piece in [3, 7, 13, 64, 1000] {
            for start in stride(from: 0, to: 256, by: 37) {
                #expect(assemble(parse(DripFeedTests.stream, piece: piece, ringCapacity: 256, startOffset: start)) == DripFeedTests.expected,
                        "piece \(piece) start \(start)")
            }
        }
    }

    @Test("many frames per read")
    func manyFramesPerRead() {
        var stream: [UInt8] = []
        for i in 0..<500 { stream += frame(0x2, [UInt8(truncatingIfNeeded: i)]) }
        let events = assemble(parse(stream, ringCapacity: 65536))
        #expect(events.count == 500)
        #expect(events.last == .message(.binary, [UInt8(truncatingIfNeeded: 499)]))
    }
}

@Suite("Random input never crashes the parsers")
struct RandomInputTests {
    @Test("the frame parser, both roles, random bytes in random pieces (bounded)")
    func frameParser() {
        var rng = SplitMix64(seed: 0xF00D)
        for _ in 0..<3000 {
            let length = Int.random(in: 0...400, using: &rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Often start with a plausible header so the parser goes deeper.
            if length > 2 && Bool.random(using: &rng) { bytes[0] = [0x81, 0x82, 0x01, 0x89, 0x88, 0x80][Int.random(in: 0...5, using: &rng)] }
            let role: Role = Bool.random(using: &rng) ? .server : .client
            let events = parse(bytes, role: role, piece: Int.random(in: 1...64, using: &rng), ringCapacity: 256,
                               maxMessageSize: UInt64.random(in: 0...1000, using: &rng))
            // Whatever came out obeys the parser's contract.
            for (i, e) in events.enumerated() {
                if case .failure(let code) = e {
                    #expect([1002, 1007, 1009].contains(code))
                    #expect(i == events.count - 1)
                }
            }
        }
    }

    @Test("the request head parser, random and mutated heads (bounded)")
    func headParser() {
        var rng = SplitMix64(seed: 0xBEEF)
        let base = Array(sampleRequest.utf8)
        for _ in 0..<5000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if Bool.random(using: &rng) { bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            let result = bytes.withUnsafeBytes { HTTPHeadParser.parse($0) }
            if case .complete(let h, let length) = result {
                #expect(length <= bytes.count)
                _ = ServerHandshake.validate(h)
            }
        }
    }
}
