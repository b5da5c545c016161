import Testing
import WebSocketCore

@Suite("RFC 6455 §5.3 Client-to-Server Masking")
struct MaskingTests {
    @Test("the vector- and word-wise mask equals the byte-wise reference for random lengths, keys and phases")
    func differential() {
        matchesReference(lengths: 0...300, maxOffset: 7, rounds: 2000, seed: 0x5EED_1234)
    }

    @Test("large payloads (unmasked in C, with AVX2 where the CPU has it) equal the byte-wise reference")
    func largeDifferential() {
        matchesReference(lengths: (Masking.vectorThreshold - 8)...(Masking.vectorThreshold + 1200), maxOffset: 31,
                         rounds: 300, seed: 0xA5A5_0001)
    }

    /// `apply` against `applyReference` on random payloads, keys, phases and
    /// (unaligned) start offsets.
    func matchesReference(lengths: ClosedRange<Int>, maxOffset: Int, rounds: Int, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<rounds {
            let length = Int.random(in: lengths, using: &rng)
            let key = UInt32.random(in: .min ... .max, using: &rng)
            let phase = Int.random(in: 0...3, using: &rng)
            let offset = Int.random(in: 0...maxOffset, using: &rng)
            var data = (0..<(length + offset)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var reference = data
            let p1 = data.withUnsafeMutableBytes { Masking.apply(key: key, phase: phase, to: $0.baseAddress! + offset, count: length) }
            let p2 = reference.withUnsafeMutableBytes { Masking.applyReference(key: key, phase: phase, to: $0.baseAddress! + offset, count: length) }
            #expect(data == reference)
            #expect(p1 == p2)
        }
    }

    @Test("masking in two pieces with the carried phase equals masking in one")
    func phaseCarriesAcrossPieces() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<500 {
            let length = Int.random(in: 1...200, using: &rng)
            let split = Int.random(in: 0...length, using: &rng)
            let key = UInt32.random(in: .min ... .max, using: &rng)
            let original = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var whole = original, pieces = original
            whole.withUnsafeMutableBytes { _ = Masking.apply(key: key, phase: 0, to: $0.baseAddress!, count: length) }
            pieces.withUnsafeMutableBytes {
                let phase = Masking.apply(key: key, phase: 0, to: $0.baseAddress!, count: split)
                Masking.apply(key: key, phase: phase, to: $0.baseAddress! + split, count: length - split)
            }
            #expect(whole == pieces)
        }
    }

    @Test("a masked payload that wraps around the ring's end unmasks correctly")
    func unmaskAcrossRingWrap() {
        let payload = (0..<200).map { UInt8($0) }
        for start in stride(from: 3900, to: 4096, by: 7) {
            #expect(assemble(parse(frame(0x2, payload), startOffset: start)) == [.message(.binary, payload)])
        }
    }
}
