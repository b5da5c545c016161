import WebSocketCore

/// permessage-deflate without context takeover in either direction: nothing
/// to keep between messages, so one of these serves every such connection of
/// a loop (per sending window). A connection borrows a `DeflateExtension` from
/// its lender for the length of a message, in either direction, and holds no
/// memory of its own between messages: the same as a connection without
/// compression. Loop thread only.
final class SharedDeflateExtension: SharedMessageExtension, DeflateSending {
    let pool: DeflatePool
    let options: CompressionOptions
    let sendWindowBits: UInt8
    var sendsWithoutContext: Bool { true }
    private(set) lazy var lender = ExtensionLender(self)

    init(pool: DeflatePool, sendWindowBits: Int, options: CompressionOptions) {
        self.pool = pool
        self.sendWindowBits = UInt8(sendWindowBits)
        self.options = options
    }

    func makeInstance() -> any MessageExtension {
        DeflateExtension(pool: pool, send: (true, Int(sendWindowBits)), receive: (true, 15), options: options)
    }

    var rsvBits: UInt8 { 0x4 }

    func shouldEncode(size: Int?) -> Bool {
        guard let size else { return true }
        return size >= options.minimumSize
    }

    // The state machine and the runtime lend an instance before any of these;
    // the shared extension itself never codes a message.
    func decode(_ input: UnsafeRawBufferPointer, isFinal: Bool) {}
    func nextDecoded() -> ExtensionStep { .failure(.internalError) }
    func encode(_ input: UnsafeRawBufferPointer, isFinal: Bool) {}
    func nextEncoded() -> ExtensionStep { .failure(.internalError) }
    func reset() {}
}
