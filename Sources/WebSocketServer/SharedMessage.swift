import WebSocketCore

/// A message framed once for every loop of a group: header and payload in one
/// immutable buffer, reference-counted, which each loop writes by reference
/// to its own connections (a copy is made only for a peer whose kernel
/// buffer is full, into that peer's queue). Immutable after `init`, so any
/// number of threads may read it; the last loop to let go frees it.
final class SharedMessage: @unchecked Sendable {
    let type: MessageType
    private let storage: UnsafeMutableRawBufferPointer
    private let headerLength: Int

    init(_ payload: UnsafeRawBufferPointer, type: MessageType) {
        self.type = type
        headerLength = FrameWriter.headerLength(payloadLength: payload.count, masked: false)
        storage = .allocate(byteCount: headerLength + payload.count, alignment: 16)
        _ = FrameWriter.writeFrame(into: storage.baseAddress!, opcode: type.opcode, fin: true,
                                   payload: payload, maskKey: nil)
    }

    deinit { storage.deallocate() }

    /// The server's frame header (unmasked, FIN, no RSV bits).
    var header: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[..<headerLength]) }
    var payload: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[headerLength...]) }
}
