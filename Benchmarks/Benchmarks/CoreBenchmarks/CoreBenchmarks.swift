import Benchmark
import WebSocketCore

// Micro benchmarks of the protocol core, with allocation counts. Each one does
// its work on memory prepared in setup, so what is measured is the code, not
// memcpy or the allocator. Static allocation thresholds live in
// ../../Thresholds and are checked by `make bench-check`.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .cpuTotal, .mallocCountTotal],
        warmupIterations: 3,
        maxDuration: .seconds(2),
        maxIterations: 10_000,
        // Up to 2 allocations over the stored count pass (the harness itself
        // varies by that much); a third fails `make bench-check`.
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 2])]
    )

    // What the harness itself allocates per measured run, to subtract from the
    // counts below (16 to 18 on Swift 6.3.1 here).
    Benchmark("Baseline (empty)", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(benchmark) }
    }

    // Parse + unmask: a ring full of masked binary frames, parsed to the end.
    // Unmasking in place flips the payload each round (XOR is its own inverse),
    // which costs the same as a fresh copy without the copy.
    for payloadSize in [16, 1024, 64 * 1024] {
        let frameSize = FrameWriter.headerLength(payloadLength: payloadSize, masked: true) + payloadSize
        let ringSize = payloadSize >= 64 * 1024 ? 128 * 1024 : 64 * 1024
        let framesPerRing = ringSize / frameSize
        Benchmark("Parse+unmask \(payloadSize) B frames",
                  configuration: .init(scalingFactor: .one)) { (benchmark: Benchmark, ring: ByteRing) in
            var ring = ring
            var parser = FrameParser(role: .server)
            for _ in benchmark.scaledIterations {
                ring.reset()
                ring.commitWrite(framesPerRing * frameSize)
                var frames = 0
                while true {
                    if case .data(let chunk, _, _) = parser.next(&ring) {
                        frames &+= 1
                        blackHole(chunk.count)
                    } else {
                        break
                    }
                }
                precondition(frames == framesPerRing)
            }
        } setup: {
            var ring = ByteRing(capacity: ringSize)
            var keys = MaskKeyGenerator()
            let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: payloadSize, alignment: 8)
            payload.initializeMemory(as: UInt8.self, repeating: 0x5A)
            for i in 0..<framesPerRing {
                FrameWriter.writeFrame(into: ring.storage + i * frameSize, opcode: .binary, fin: true,
                                       payload: UnsafeRawBufferPointer(payload), maskKey: keys.next())
            }
            ring.reset()
            payload.deallocate()
            keys.deallocate()
            return ring
        }
    }

    // UTF-8 validation of 64 KiB: the ASCII fast path, and text that is mostly
    // two- and three-byte sequences.
    for (name, unit) in [("ASCII", "a"), ("multi-byte", "é€")] {
        Benchmark("UTF-8 validate 64 KiB \(name)", configuration: .init(scalingFactor: .one)) { (benchmark: Benchmark, text: UnsafeMutableRawBufferPointer) in
            for _ in benchmark.scaledIterations {
                var validator = UTF8Validator()
                precondition(validator.validate(UnsafeRawBufferPointer(text)) && validator.isComplete)
            }
        } setup: {
            let bytes = Array(String(repeating: unit, count: 64 * 1024 / unit.utf8.count).utf8)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
            buffer.copyBytes(from: bytes)
            return buffer
        }
    }

    // Frame encoding as the server sends: header plus payload copied into the
    // cork buffer, 1000 frames per iteration.
    for payloadSize in [16, 1024] {
        Benchmark("Encode \(payloadSize) B frames x1000", configuration: .init(scalingFactor: .one)) { (benchmark: Benchmark, buffers: (UnsafeMutableRawPointer, UnsafeMutableRawBufferPointer)) in
            let (out, payload) = buffers
            for _ in benchmark.scaledIterations {
                var offset = 0
                for _ in 0..<1000 {
                    offset &+= FrameWriter.writeFrame(into: out + offset, opcode: .binary, fin: true,
                                                      payload: UnsafeRawBufferPointer(payload))
                }
                blackHole(offset)
            }
        } setup: {
            let out = UnsafeMutableRawPointer.allocate(byteCount: 1000 * (payloadSize + 14), alignment: 16)
            let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: payloadSize, alignment: 8)
            payload.initializeMemory(as: UInt8.self, repeating: 1)
            return (out, payload)
        }
    }

    registerSweepBenchmarks()
    registerEchoBenchmarks()
    registerCompressionBenchmarks()
    registerCrossThreadBenchmarks()
    registerPublishBenchmarks()
}
