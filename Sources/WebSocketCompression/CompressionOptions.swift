/// permessage-deflate (RFC 7692) settings for a server or a client. Off unless
/// set (`WebSocketOptions.compression`): compressing secrets next to text an
/// attacker chooses leaks them (CRIME, BREACH), so turn it on where messages
/// do not mix the two.
///
/// The defaults keep memory per connection small. The server compresses each
/// message on its own (`server_no_context_takeover`), with one compressor per
/// loop shared by every connection; it lets a client keep its context only
/// with a window it may limit (`client_max_window_bits`, which browsers offer),
/// and then decompresses with a 4 KiB window, allocated at the first
/// compressed message. A client that cannot be limited is asked for
/// `client_no_context_takeover`, and its messages go through a decompressor
/// shared on the loop.
public struct CompressionOptions: Sendable, Equatable {
    /// zlib's level, 0 (store) to 9 (smallest); 1 is the fastest that compresses.
    public var level: Int = 6
    /// Messages smaller than this go out uncompressed (the bytes saved would
    /// not pay for the work). Per send, `compress: false` also skips it.
    public var minimumSize: Int = 128
    /// Whether this end keeps its compression context from one message to the
    /// next. False: a compressor shared on the loop, no memory per connection.
    /// Server: sent as `server_no_context_takeover`; client: offered as
    /// `client_no_context_takeover`.
    public var ownContextTakeover: Bool
    /// This end's compression window, 8...15 (2^bits bytes). Only a context
    /// kept between messages costs memory per connection: 2^(bits+2) bytes
    /// plus 2^(memoryLevel+9).
    public var ownMaxWindowBits: Int = 15
    /// zlib's memLevel (1...9) for a compressor that keeps its context.
    public var memoryLevel: Int = 4
    /// Whether the peer may keep its context between messages (then this end
    /// keeps a decompressor per connection, sized by `peerMaxWindowBits`).
    public var peerContextTakeover: Bool = true
    /// The largest window the peer may use when it keeps its context, 8...15:
    /// what this end's decompressor holds per connection (2^bits bytes, plus
    /// about 7 KiB of zlib's state).
    public var peerMaxWindowBits: Int

    /// - Parameter server: the server's defaults (no context of its own, a
    ///   client window of 12 bits); a client's keep both contexts and ask for
    ///   nothing.
    public init(forServer server: Bool = true) {
        ownContextTakeover = !server
        peerMaxWindowBits = server ? 12 : 15
    }

    /// A client's defaults: keep both contexts, ask the server for nothing.
    public static var forClient: CompressionOptions { CompressionOptions(forServer: false) }

    /// The problems with these values, if any.
    public func validationError() -> String? {
        if !(0...9).contains(level) { return "compression level must be 0...9" }
        if !(8...15).contains(ownMaxWindowBits) || !(8...15).contains(peerMaxWindowBits) {
            return "compression window bits must be 8...15"
        }
        if !(1...9).contains(memoryLevel) { return "compression memoryLevel must be 1...9" }
        if minimumSize < 0 { return "compression minimumSize must not be negative" }
        return nil
    }
}
