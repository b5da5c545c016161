// libFuzzer entry point over WebSocketCore's parsers. Built by Tests/Fuzz/run.sh
// with -sanitize=fuzzer,address together with WebSocketCore's sources, so the
// fuzzer sees (and instruments) the real code.
//
// The first input byte picks the target and the options; the rest is the input:
// frames drip-fed through a small ring in pieces, or an HTTP request head.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let selector = data[0]
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    if selector & 1 == 0 {
        fuzzFrames(input, role: selector & 2 == 0 ? .server : .client, piece: Int(selector >> 2) + 1)
    } else {
        fuzzHead(input)
    }
    return 0
}

func fuzzFrames(_ input: UnsafeRawBufferPointer, role: Role, piece: Int) {
    var ring = ByteRing(capacity: 256)
    defer { ring.deallocate() }
    var parser = FrameParser(role: role, maxMessageSize: 4096)
    var offset = 0
    var terminated = false
    while offset < input.count && !terminated {
        let region = ring.writableRegion
        let n = min(region.count, piece, input.count - offset)
        if n == 0 { fatalError("ring stalled: the parser stopped consuming") }
        region.baseAddress!.copyMemory(from: input.baseAddress! + offset, byteCount: n)
        ring.commitWrite(n)
        offset += n
        loop: while true {
            switch parser.next(&ring) {
            case .needMoreData: break loop
            case .data(let chunk, let type, _):
                if chunk.count > 256 { fatalError("chunk larger than the ring") }
                if type == .text, chunk.count > 0 { _ = chunk.reduce(0, &+) }
            case .ping(let p), .pong(let p):
                if p.count > 125 { fatalError("control payload over 125") }
            case .close(let code, let reason):
                if !(code.isValidOnWire || code == .noStatusReceived) { fatalError("bad close code passed") }
                if String(validating: reason, as: UTF8.self) == nil { fatalError("invalid UTF-8 reason passed") }
                terminated = true
                break loop
            case .failure:
                terminated = true
                break loop
            }
        }
    }
}

func fuzzHead(_ input: UnsafeRawBufferPointer) {
    if case .complete(let head, let length) = HTTPHeadParser.parse(input, limits: HTTPHeadLimits(maxHeadSize: 2048, maxHeaderCount: 32)) {
        if length > input.count { fatalError("head longer than input") }
        if case .success(let request) = ServerHandshake.validate(head) {
            _ = ServerHandshake.switchingProtocolsResponse(key: request.key, subprotocol: request.offeredSubprotocols.first)
        }
    }
}
