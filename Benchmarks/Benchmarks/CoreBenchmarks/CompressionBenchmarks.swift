import Benchmark
import WebSocketCompression
import WebSocketCore

/// The compressed echo path, counted for allocations: 1,000 messages of 1 KiB
/// of JSON-like text, compressed with no context either way (frames that do
/// not depend on each other, so the ring can be refilled with the same ones),
/// inflated by the state machine through a lent per-message instance and
/// deflated back into a buffer. Steady state must allocate nothing per
/// message: streams, buffers and instances come from the loop's pool and
/// lender.
func registerCompressionBenchmarks() {
    let messages = 1_000
    Benchmark("Compressed echo in memory, 1k x 1 KiB", configuration: .init(scalingFactor: .one)) { (benchmark: Benchmark, state: CompressedEcho) in
        for _ in benchmark.scaledIterations {
            blackHole(state.run(messages: messages))
        }
    } setup: {
        CompressedEcho()
    }
}

final class CompressedEcho {
    let negotiator: PermessageDeflate
    var machine: WebSocketStateMachine
    var ring = ByteRing(capacity: 64 * 1024)
    /// One compressed, masked frame as a client sends it.
    let frame: [UInt8]
    let out = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)

    init() {
        var options = CompressionOptions()
        options.peerContextTakeover = false
        negotiator = PermessageDeflate(options: options)
        let offers = ExtensionOffer.parse(["permessage-deflate"])!
        let ext = negotiator.accept(offers)!.extension
        machine = WebSocketStateMachine(role: .server, maxMessageSize: 1 << 20, messageExtension: ext)
        // A peer's frame: the message compressed by a client-side negotiator.
        let client = PermessageDeflate(options: { var o = CompressionOptions.forClient; o.ownContextTakeover = false; return o }())
        let clientExt = client.confirm(ExtensionOffer.parse(["permessage-deflate; client_no_context_takeover; server_no_context_takeover"])![0])!
        var clientMachine = WebSocketStateMachine(role: .client, maxMessageSize: 1 << 20, messageExtension: clientExt)
        let json = Array((0..<40).map { "{\"id\":\($0),\"user\":\"user\($0 * 37 % 101)\",\"ok\":true}," }.joined().utf8.prefix(1024))
        var compressed: [UInt8] = []
        let encoder = clientMachine.beginSending()!
        json.withUnsafeBytes { encoder.encode($0, isFinal: true) }
        while case .output(let bytes, let end) = encoder.nextEncoded() {
            compressed += bytes
            if end { break }
        }
        clientMachine.finishedSending()
        var keys = MaskKeyGenerator()
        var frame = [UInt8](repeating: 0, count: compressed.count + 14)
        let length = frame.withUnsafeMutableBytes { raw in
            compressed.withUnsafeBytes {
                FrameWriter.writeFrame(into: raw.baseAddress!, opcode: .text, fin: true, rsv: 0x4, payload: $0, maskKey: keys.next())
            }
        }
        keys.deallocate()
        self.frame = Array(frame.prefix(length))
    }

    func run(messages: Int) -> Int {
        var echoed = 0
        var produced = 0
        let perRing = ring.capacity / frame.count
        while echoed < messages {
            ring.reset()
            let batch = min(perRing, messages - echoed)
            for _ in 0..<batch { frame.withUnsafeBytes { _ = ring.write($0) } }
            loop: while true {
                switch machine.receive(&ring, now: 0) {
                case .message(let chunk, _, let isFinal):
                    // Echo it compressed, as a connection's send would.
                    let encoder = machine.beginSending()!
                    encoder.encode(chunk, isFinal: isFinal)
                    while case .output(let bytes, let end) = encoder.nextEncoded() {
                        out.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                        produced &+= bytes.count
                        if end { break }
                    }
                    machine.finishedSending()
                    if isFinal { echoed &+= 1 }
                default:
                    break loop
                }
            }
        }
        return produced
    }
}
