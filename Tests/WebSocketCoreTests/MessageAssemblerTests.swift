import Testing
import WebSocketCore

@Suite("MessageAssembler: whole messages from chunks")
struct MessageAssemblerTests {
    @Test("a message in one chunk comes back as the same memory, with nothing buffered")
    func singleChunkIsZeroCopy() {
        var assembler = MessageAssembler()
        defer { assembler.deallocate() }
        let bytes: [UInt8] = Array("hello".utf8)
        bytes.withUnsafeBytes { chunk in
            let message = assembler.append(chunk, isFinal: true)
            #expect(message?.baseAddress == chunk.baseAddress)
            #expect(message?.count == 5)
        }
        #expect(assembler.bufferedCount == 0)
    }

    @Test("chunks are joined in order; empty chunks count; the buffer is reused")
    func joins() {
        var assembler = MessageAssembler()
        defer { assembler.deallocate() }
        for round in 0..<3 {
            var result: [UInt8]?
            for (i, piece) in [[1, 2], [], [3], [4, 5, 6]].enumerated() {
                let bytes = piece.map { UInt8($0 + round) }
                bytes.withUnsafeBytes { chunk in
                    if let m = assembler.append(chunk, isFinal: i == 3) { result = Array(m) }
                }
            }
            #expect(result == [1, 2, 3, 4, 5, 6].map { UInt8($0 + round) })
            #expect(assembler.bufferedCount == 0)
        }
    }

    @Test("a large message's buffer is released on the next message")
    func largeBufferReleased() {
        var assembler = MessageAssembler()
        defer { assembler.deallocate() }
        let big = [UInt8](repeating: 7, count: 200 * 1024)
        big.withUnsafeBytes { _ = assembler.append(UnsafeRawBufferPointer(rebasing: $0[..<100_000]), isFinal: false) }
        var length = 0
        big.withUnsafeBytes { if let m = assembler.append(UnsafeRawBufferPointer(rebasing: $0[100_000...]), isFinal: true) { length = m.count } }
        #expect(length == big.count)
        // The next fragmented message starts over with a small buffer.
        [UInt8](repeating: 1, count: 10).withUnsafeBytes { _ = assembler.append($0, isFinal: false) }
        #expect(assembler.bufferedCount == 10)
    }
}
