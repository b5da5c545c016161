import WebSocketCore

/// An event with its bytes copied out of the ring, so tests can compare them.
enum Owned: Equatable, CustomStringConvertible {
    case data([UInt8], MessageType, isFinal: Bool)
    case ping([UInt8])
    case pong([UInt8])
    case close(UInt16, String)
    case failure(UInt16)

    var description: String {
        switch self {
        case .data(let b, let t, let f): return "data(\(b.count)B \(t) final=\(f))"
        case .ping(let b): return "ping(\(b))"
        case .pong(let b): return "pong(\(b))"
        case .close(let c, let r): return "close(\(c), \(r))"
        case .failure(let c): return "failure(\(c))"
        }
    }
}

/// A message-level view: consecutive data chunks joined up to their final one.
enum Assembled: Equatable {
    case message(MessageType, [UInt8])
    case ping([UInt8])
    case pong([UInt8])
    case close(UInt16, String)
    case failure(UInt16)
}

func assemble(_ events: [Owned]) -> [Assembled] {
    var out: [Assembled] = []
    var partial: [UInt8] = []
    for event in events {
        switch event {
        case .data(let bytes, let type, let isFinal):
            partial += bytes
            if isFinal { out.append(.message(type, partial)); partial = [] }
        case .ping(let b): out.append(.ping(b))
        case .pong(let b): out.append(.pong(b))
        case .close(let c, let r): out.append(.close(c, r))
        case .failure(let c): out.append(.failure(c))
        }
    }
    return out
}

/// Pulls events until the parser needs more bytes.
func drain(_ parser: inout FrameParser, _ ring: inout ByteRing, into events: inout [Owned]) {
    while true {
        switch parser.next(&ring) {
        case .needMoreData: return
        case .data(let b, let t, let f): events.append(.data(Array(b), t, isFinal: f))
        case .ping(let b): events.append(.ping(Array(b)))
        case .pong(let b): events.append(.pong(Array(b)))
        case .close(let c, let r): events.append(.close(c.rawValue, String(decoding: r, as: UTF8.self)))
        case .failure(let c): events.append(.failure(c.rawValue)); return
        }
    }
}

/// Feeds `bytes` to a parser in pieces of at most `piece` bytes (the way reads
/// arrive), through a ring of `ringCapacity`, and returns every event.
func parse(_ bytes: [UInt8], role: Role = .server, piece: Int = .max, ringCapacity: Int = 4096,
           maxMessageSize: UInt64 = .max, startOffset: Int = 0) -> [Owned] {
    parseCountingOnePass(bytes, role: role, piece: piece, ringCapacity: ringCapacity,
                         maxMessageSize: maxMessageSize, startOffset: startOffset).events
}

/// `parse`, and how many messages the parser's one-pass path delivered
/// (counted in debug builds only: 0 in release).
func parseCountingOnePass(_ bytes: [UInt8], role: Role = .server, piece: Int = .max, ringCapacity: Int = 4096,
                          maxMessageSize: UInt64 = .max, startOffset: Int = 0) -> (events: [Owned], onePass: Int) {
    var ring = ByteRing(capacity: ringCapacity)
    defer { ring.deallocate() }
    var parser = FrameParser(role: role, maxMessageSize: maxMessageSize)
    var events: [Owned] = []
    // Move the ring's start so that wrap-around happens at a chosen place.
    if startOffset > 0 {
        [UInt8](repeating: 0, count: startOffset).withUnsafeBytes { _ = ring.write($0) }
        ring.consume(startOffset)
    }
    var offset = 0
    while offset < bytes.count {
        let region = ring.writableRegion
        let n = min(region.count, piece, bytes.count - offset)
        precondition(n > 0, "ring stalled")
        bytes.withUnsafeBytes { region.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
        ring.commitWrite(n)
        offset += n
        drain(&parser, &ring, into: &events)
        if parser.isTerminated { break }
    }
    #if DEBUG
    return (events, parser.onePassMessages)
    #else
    return (events, 0)
    #endif
}

/// Builds a frame byte by byte from RFC 6455 §5.2, independently of FrameWriter.
func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, mask: [UInt8]? = [0x37, 0xfa, 0x21, 0x3d],
           rsv: UInt8 = 0, forceLength64: Bool = false) -> [UInt8] {
    var out: [UInt8] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode]
    let maskBit: UInt8 = mask == nil ? 0 : 0x80
    let n = payload.count
    if n < 126 && !forceLength64 {
        out.append(maskBit | UInt8(n))
    } else if n <= 0xFFFF && !forceLength64 {
        out.append(maskBit | 126)
        out += [UInt8(n >> 8), UInt8(n & 0xFF)]
    } else {
        out.append(maskBit | 127)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((UInt64(n) >> UInt64(shift)) & 0xFF)) }
    }
    if let mask {
        out += mask
        for (i, b) in payload.enumerated() { out.append(b ^ mask[i % 4]) }
    } else {
        out += payload
    }
    return out
}

func closeBody(_ code: UInt16, _ reason: String = "") -> [UInt8] {
    [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)
}

/// A deterministic generator, so a failing random test can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
