import Testing
import WebSocketCore

@Suite("RFC 6455 §8.1 Handling Errors in UTF-8-Encoded Data")
struct UTF8Tests {
    static let valid: [[UInt8]] = [
        [], Array("plain ASCII text that is longer than eight bytes".utf8),
        Array("κόσμε".utf8), Array("Hello-µ@ßöäüàá-UTF-8!!".utf8), [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
        [0xEF, 0xBF, 0xBF], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], [0xC2, 0x80], [0xE0, 0xA0, 0x80],
    ]
    static let invalid: [[UInt8]] = [
        [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
        [0xF0, 0x80, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFE], [0xFF],
        [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64],
    ]

    @Test("valid sequences pass, whole and split at every byte")
    func validSequences() {
        for bytes in UTF8Tests.valid {
            for split in 0...bytes.count {
                var v = UTF8Validator()
                let a = Array(bytes[..<split]).withUnsafeBytes { v.validate($0) }
                let b = Array(bytes[split...]).withUnsafeBytes { v.validate($0) }
                #expect(a && b && v.isComplete, "\(bytes) split at \(split)")
            }
        }
    }

    @Test("invalid sequences fail")
    func invalidSequences() {
        for bytes in UTF8Tests.invalid {
            var v = UTF8Validator()
            #expect(!(bytes.withUnsafeBytes { v.validate($0) }), "\(bytes)")
        }
    }

    @Test("the validator agrees with the standard library on random bytes")
    func differential() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<20000 {
            let length = Int.random(in: 0...12, using: &rng)
            // Bias towards bytes that form multi-byte sequences.
            let bytes = (0..<length).map { _ in Bool.random(using: &rng) ? UInt8.random(in: 0x80...0xF5, using: &rng) : UInt8.random(in: 0...255, using: &rng) }
            var v = UTF8Validator()
            let ours = bytes.withUnsafeBytes { v.validate($0) } && v.isComplete
            let stdlib = String(validating: bytes, as: UTF8.self) != nil
            #expect(ours == stdlib, "\(bytes)")
        }
    }

    @Test("a text message fails with 1007 at the first bad byte, before its frame ends (fail fast)")
    func failFast() {
        // The invalid byte is in the first 10 bytes of a 1000-byte frame; only 20 arrive.
        var payload = [UInt8](repeating: 0x41, count: 1000)
        payload[5] = 0xFF
        let partial = Array(frame(0x1, payload).prefix(28))
        #expect(parse(partial) == [.failure(1007)])
    }

    @Test("a code point split across fragments is valid; a message ending mid code point is not")
    func acrossFragments() {
        let ok = frame(0x1, [0xCE], fin: false) + frame(0x0, [0xBA])
        #expect(assemble(parse(ok)) == [.message(.text, [0xCE, 0xBA])])
        let truncated = frame(0x1, [0x41, 0xCE])
        #expect(parse(truncated) == [.failure(1007)])
    }

    @Test("binary messages are not validated")
    func binaryNotValidated() {
        #expect(assemble(parse(frame(0x2, [0xFF, 0xFE]))) == [.message(.binary, [0xFF, 0xFE])])
    }
}
