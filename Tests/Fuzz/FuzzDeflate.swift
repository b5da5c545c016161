// libFuzzer entry point over permessage-deflate: the inflate path and the
// extension header parser. Built by Tests/Fuzz/run.sh with
// -sanitize=fuzzer,address together with WebSocketCore's and
// WebSocketCompression's sources.
//
// The first input byte picks the target and the options; the rest is the input:
// a compressed message (frames with RSV1 around it, fed in pieces through the
// state machine), or a Sec-WebSocket-Extensions header.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let selector = data[0]
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    if selector & 1 == 0 {
        fuzzInflate(input, fragments: Int(selector >> 1) & 7 + 1, piece: Int(selector >> 4) * 37 + 1)
    } else {
        fuzzHeader(input)
    }
    return 0
}

let negotiator = PermessageDeflate(options: CompressionOptions())
let offer = ExtensionOffer.parse(["permessage-deflate; client_max_window_bits"])!
let maxMessageSize = 64 * 1024

/// Any bytes as a compressed message, split into `fragments` frames and fed
/// in pieces: the machine must end with a message or a close, never hand up
/// more than the limit plus one step, and never a chunk over one step.
func fuzzInflate(_ input: UnsafeRawBufferPointer, fragments: Int, piece: Int) {
    let ext = negotiator.accept(offer)!.extension
    var machine = WebSocketStateMachine(role: .client, maxMessageSize: maxMessageSize,
                                        keepAlive: KeepAlivePolicy(interval: 0, timeout: 0), closeTimeout: 1000,
                                        messageExtension: ext)
    var ring = ByteRing(capacity: 1024)
    defer { ring.deallocate() }
    var wire: [UInt8] = []
    let size = max(1, (input.count + fragments - 1) / fragments)
    var start = 0
    repeat {
        let end = min(input.count, start + size)
        let first = start == 0
        let last = end == input.count
        var header: [UInt8] = [(last ? 0x80 : 0) | (first ? 0x40 | 0x2 : 0x0)]
        let count = end - start
        if count < 126 { header.append(UInt8(count)) } else { header += [126, UInt8(count >> 8), UInt8(count & 0xFF)] }
        wire += header + input[start..<end]
        start = end
    } while start < input.count
    var delivered = 0
    var offset = 0
    var over = false
    while offset < wire.count && !over {
        let n = min(piece, ring.freeCount, wire.count - offset)
        if n == 0 { fatalError("ring stalled") }
        wire[offset..<offset + n].withUnsafeBytes { _ = ring.write($0) }
        offset += n
        loop: while true {
            switch machine.receive(&ring, now: 0) {
            case .needMoreData: break loop
            case .message(let chunk, _, let isFinal):
                if chunk.count > DeflatePool.inflateStep { fatalError("a step larger than the step size") }
                delivered += chunk.count
                if delivered > maxMessageSize { fatalError("delivered past the limit") }
                if isFinal { over = true; break loop }
            case .sendPong, .pong: continue
            case .closed(let code, _, _):
                if ![1002, 1007, 1009, 1011].contains(code.rawValue) { fatalError("unexpected close \(code.rawValue)") }
                over = true
                break loop
            }
        }
    }
    ext.reset()
}

/// Any header: parsing never traps, and an offer the server accepts gives a
/// response that parses as a valid response, which a client accepts.
func fuzzHeader(_ input: UnsafeRawBufferPointer) {
    guard let text = String(validating: input, as: UTF8.self),
          let offers = ExtensionOffer.parse([Substring(text)]) else { return }
    let mine = offers.filter { $0.name == DeflateParameters.extensionName }
    guard let (response, _) = negotiator.accept(mine) else { return }
    guard let reparsed = ExtensionOffer.parse([Substring(response.headerValue)]), reparsed.count == 1,
          DeflateParameters(reparsed[0], isResponse: true) != nil else {
        fatalError("the server's response does not parse: \(response.headerValue)")
    }
}
