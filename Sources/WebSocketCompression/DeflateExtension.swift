import CZlib
import WebSocketCore

/// What a broadcast needs to know of a connection's compression: whether its
/// messages are compressed without context, and with which window.
public protocol DeflateSending {
    var sendsWithoutContext: Bool { get }
    var sendWindowBits: UInt8 { get }
}

/// permessage-deflate on one connection (RFC 7692 §7.2), as the core's
/// extension seam drives it: a received message marked with RSV1 is inflated
/// in bounded steps, a sent one deflated and framed from each step.
///
/// A direction without context takeover borrows a stream from the loop's pool
/// for one message; one with context keeps its own, made at its first
/// compressed message and sized by the negotiated window. Loop thread only.
public final class DeflateExtension: MessageExtension, DeflateSending {
    // Fields in order of size; one of these per connection that negotiated.
    let pool: DeflatePool
    private var inflater: Inflater?
    private var deflater: Deflater?
    /// The last bytes of a flushed step, held back because they may be the
    /// start of the `00 00 ff ff` that §7.2.1 removes (up to 4).
    private var heldTail: UInt32 = 0
    let receiveWindowBits: UInt8
    /// The window this end compresses with (its LZ77 window, 8 to 15 bits).
    public let sendWindowBits: UInt8
    let level: UInt8
    let memoryLevel: UInt8
    let minimumSize: Int32
    private var heldCount: UInt8 = 0
    /// This direction resets after every message, with a stream of the pool's.
    public let sendsWithoutContext: Bool
    let receivesWithoutContext: Bool
    private var inputFinal = false
    private var tailFed = false
    private var streamEnded = false
    private var receivedAny = false
    private var encodeFinal = false

    /// RSV1, as `FrameHeader.rsv` counts the three bits (§6: "Per-Message Compressed").
    public var rsvBits: UInt8 { 0x4 }

    init(pool: DeflatePool, send: (noContext: Bool, windowBits: Int), receive: (noContext: Bool, windowBits: Int),
         options: CompressionOptions) {
        self.pool = pool
        sendsWithoutContext = send.noContext
        sendWindowBits = UInt8(send.windowBits)
        receivesWithoutContext = receive.noContext
        receiveWindowBits = UInt8(receive.windowBits)
        level = UInt8(options.level)
        memoryLevel = UInt8(options.memoryLevel)
        minimumSize = Int32(clamping: options.minimumSize)
    }

    deinit { reset() }

    // MARK: Receiving (§7.2.2)

    /// Takes a received message's compressed bytes (RFC 7692 §7.2.2); `nextDecoded()` gives the
    /// plaintext out.
    public func decode(_ input: UnsafeRawBufferPointer, isFinal: Bool) {
        if inflater == nil {
            inflater = receivesWithoutContext ? pool.borrowInflater() : Inflater(windowBits: Int(receiveWindowBits))
            tailFed = false
            streamEnded = false
            receivedAny = false
        }
        guard let stream = inflater?.stream else { return }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = UInt32(input.count)
        receivedAny = receivedAny || !input.isEmpty
        inputFinal = isFinal
    }

    /// The next piece of plaintext of the message being decoded, or what is needed next.
    public func nextDecoded() -> ExtensionStep {
        guard let inflater else { return .failure(.internalError) }
        let stream = inflater.stream
        let out = pool.inflateBuffer
        // After a final block (BFINAL) zlib reads nothing more: what follows in
        // the message is ignored, in a later frame as in the same one.
        if streamEnded { stream.pointee.avail_in = 0 }
        stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = UInt32(out.count)
        while !streamEnded {
            let rc = inflate(stream, Z_SYNC_FLUSH)
            if rc == Z_STREAM_END {
                streamEnded = true
                break
            }
            // Z_BUF_ERROR only says no progress was possible: input ran out.
            if rc != Z_OK && rc != Z_BUF_ERROR { return .failure(rc == Z_MEM_ERROR ? .internalError : .invalidPayloadData) }
            if stream.pointee.avail_in == 0 && inputFinal && !tailFed && stream.pointee.avail_out > 0 && receivedAny {
                stream.pointee.next_in = messageTail
                stream.pointee.avail_in = 4
                tailFed = true
                continue
            }
            break
        }
        let produced = out.count - Int(stream.pointee.avail_out)
        let inputDone = stream.pointee.avail_in == 0 || streamEnded
        let flushed = stream.pointee.avail_out > 0 || streamEnded
        if inputFinal && inputDone && flushed && (tailFed || streamEnded || !receivedAny) {
            endReceivedMessage()
            return .output(UnsafeRawBufferPointer(start: out.baseAddress, count: produced), endOfMessage: true)
        }
        if produced > 0 { return .output(UnsafeRawBufferPointer(start: out.baseAddress, count: produced), endOfMessage: false) }
        return .inputUsed
    }

    private func endReceivedMessage() {
        guard let inflater else { return }
        if receivesWithoutContext {
            pool.giveBack(inflater)
            self.inflater = nil
        } else if streamEnded {
            // A sender may end a message with a final block (BFINAL); zlib then
            // needs a reset, and with context takeover the window must survive it.
            keepWindowAcrossReset(inflater)
        }
        tailFed = false
        streamEnded = false
        receivedAny = false
    }

    private func keepWindowAcrossReset(_ inflater: Inflater) {
        var window = [UInt8](repeating: 0, count: 1 << inflater.windowBits)
        var length: UInt32 = 0
        window.withUnsafeMutableBufferPointer { buffer in
            _ = inflateGetDictionary(inflater.stream, buffer.baseAddress, &length)
            inflater.reset()
            _ = inflateSetDictionary(inflater.stream, buffer.baseAddress, length)
        }
    }

    // MARK: Sending (§7.2.1)

    /// Whether a message of `size` bytes (nil: unknown) is compressed: not below `minimumSize`.
    public func shouldEncode(size: Int?) -> Bool {
        guard let size else { return true }
        return size >= Int(minimumSize)
    }

    /// Takes plaintext of a message being sent; `nextEncoded()` gives the compressed bytes out (RFC
    /// 7692 §7.2.1).
    public func encode(_ input: UnsafeRawBufferPointer, isFinal: Bool) {
        if deflater == nil {
            deflater = sendsWithoutContext
                ? pool.borrowDeflater(windowBits: Int(sendWindowBits))
                : Deflater(windowBits: Int(sendWindowBits), level: Int(level), memoryLevel: Int(memoryLevel))
            heldCount = 0
        }
        guard let stream = deflater?.stream else { return }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = UInt32(input.count)
        encodeFinal = isFinal
    }

    /// The next piece of compressed output, or what is needed next.
    public func nextEncoded() -> ExtensionStep {
        guard let deflater else { return .failure(.internalError) }
        let stream = deflater.stream
        let out = pool.deflateBuffer
        let base = out.baseAddress!
        // What the last step held back goes first.
        withUnsafeBytes(of: heldTail) { base.copyMemory(from: $0.baseAddress!, byteCount: Int(heldCount)) }
        let held = Int(heldCount)
        stream.pointee.next_out = (base + held).assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = UInt32(out.count - held)
        let hadInput = stream.pointee.avail_in > 0
        // A message's last input ends with a sync flush: byte-aligned, and
        // ending in the empty stored block `00 00 ff ff` that §7.2.1 removes.
        let rc = deflate(stream, encodeFinal ? Z_SYNC_FLUSH : Z_NO_FLUSH)
        if rc != Z_OK && rc != Z_BUF_ERROR { return .failure(.internalError) }
        let total = out.count - Int(stream.pointee.avail_out)
        if !encodeFinal {
            heldCount = 0
            if total == 0 && !hadInput { return .inputUsed }
            return .output(UnsafeRawBufferPointer(start: base, count: total), endOfMessage: false)
        }
        if stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 {
            // The flush is complete.
            heldCount = 0
            endSentMessage()
            if total == 0 {
                // zlib makes no second flush marker for a message with no
                // bytes (an empty message right after another, with context):
                // send §7.2.3.6's empty message, one 00 byte (an empty stored
                // block once the receiver appends its tail).
                base.storeBytes(of: 0, as: UInt8.self)
                return .output(UnsafeRawBufferPointer(start: base, count: 1), endOfMessage: true)
            }
            guard total >= 4 else { return .failure(.internalError) }
            return .output(UnsafeRawBufferPointer(start: base, count: total - 4), endOfMessage: true)
        }
        // More to come: hold back what may be the start of the marker.
        let keep = min(4, total)
        heldTail = 0
        withUnsafeMutableBytes(of: &heldTail) { $0.baseAddress!.copyMemory(from: base + total - keep, byteCount: keep) }
        heldCount = UInt8(keep)
        return .output(UnsafeRawBufferPointer(start: base, count: total - keep), endOfMessage: false)
    }

    private func endSentMessage() {
        if sendsWithoutContext, let deflater {
            pool.giveBack(deflater)
            self.deflater = nil
        }
    }

    // MARK: Ending

    /// Drops the contexts (returning them to the pool) after a failure or at close.
    public func reset() {
        if let inflater {
            if receivesWithoutContext { pool.giveBack(inflater) }
            self.inflater = nil
        }
        if let deflater {
            if sendsWithoutContext { pool.giveBack(deflater) }
            self.deflater = nil
        }
        heldCount = 0
    }
}

/// The 4 bytes a sender removes from the end of every message (§7.2.1), which
/// the receiver gives zlib on their own after the message (§7.2.2) instead of
/// copying the message to append them. One copy for the process, never written.
// Unchecked: Swift initialises a global once, behind `swift_once`, and no
// code writes these four bytes after that; zlib only reads them.
nonisolated(unsafe) private let messageTail: UnsafeMutablePointer<Bytef> = {
    let bytes = UnsafeMutablePointer<Bytef>.allocate(capacity: 4)
    bytes.initialize(from: [0x00, 0x00, 0xFF, 0xFF], count: 4)
    return bytes
}()
