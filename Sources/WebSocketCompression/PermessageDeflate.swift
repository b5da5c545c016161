import WebSocketCore

/// Negotiates permessage-deflate (RFC 7692 §7.1) for one server or client, on
/// one loop: made by the endpoint from its `CompressionOptions`, with the
/// loop's `DeflatePool`. It is not put in options, and it is used on its
/// loop's thread only (hence the unchecked `Sendable` the seam asks for).
public final class PermessageDeflate: ExtensionNegotiator, @unchecked Sendable {
    /// "permessage-deflate".
    public var name: String { DeflateParameters.extensionName }
    /// The options it was made with.
    public let options: CompressionOptions
    /// The loop's zlib streams, lent to connections between messages.
    public let pool: DeflatePool

    /// The extensions shared by connections with no context either way, by
    /// sending window.
    private var shared: [Int: SharedDeflateExtension] = [:]

    /// The negotiator for `options`, with a pool of its own (the endpoint
    /// makes one per loop).
    public init(options: CompressionOptions) {
        self.options = options
        pool = DeflatePool(level: options.level, memoryLevel: options.memoryLevel)
    }

    /// The codec for one connection: shared when neither direction keeps a
    /// context, else its own.
    func makeExtension(send: (noContext: Bool, windowBits: Int),
                       receive: (noContext: Bool, windowBits: Int)) -> any MessageExtension {
        if send.noContext && receive.noContext {
            if let ext = shared[send.windowBits] { return ext }
            let ext = SharedDeflateExtension(pool: pool, sendWindowBits: send.windowBits, options: options)
            shared[send.windowBits] = ext
            return ext
        }
        return DeflateExtension(pool: pool, send: send, receive: receive, options: options)
    }

    // MARK: Server

    /// The first offer that can be honoured; an offer with a malformed,
    /// unknown or repeated parameter is declined (§7.1), and the next tried.
    public func accept(_ offers: [ExtensionOffer]) -> (response: ExtensionOffer, extension: any MessageExtension)? {
        for offer in offers {
            guard let asked = DeflateParameters(offer, isResponse: false) else { continue }
            return respond(to: asked)
        }
        return nil
    }

    func respond(to asked: DeflateParameters) -> (response: ExtensionOffer, extension: any MessageExtension) {
        var response = DeflateParameters()
        // §7.1.1.1: the server may always say it keeps no context; it must when asked.
        response.serverNoContextTakeover = asked.serverNoContextTakeover || !options.ownContextTakeover
        // §7.1.2.1: at most what the client asked for; the server may lower it
        // unasked.
        let serverBits = min(asked.serverMaxWindowBits ?? 15, options.ownMaxWindowBits)
        if asked.serverMaxWindowBits != nil || serverBits < 15 { response.serverMaxWindowBits = serverBits }
        // §7.1.1.2: the server may always forbid the client's context.
        var clientNoContext = asked.clientNoContextTakeover || !options.peerContextTakeover
        var clientBits = 15
        switch asked.clientMaxWindowBits {
        case .absent:
            // §7.1.2.2: a client that did not offer the parameter cannot be
            // limited, and would need a 32 KiB window kept per connection;
            // when the options want less, it keeps no context instead.
            if options.peerMaxWindowBits < 15 { clientNoContext = true }
        case .bare:
            clientBits = options.peerMaxWindowBits
            response.clientMaxWindowBits = .value(clientBits)
        case .value(let bits):
            clientBits = min(bits, options.peerMaxWindowBits)
            response.clientMaxWindowBits = .value(clientBits)
        }
        response.clientNoContextTakeover = clientNoContext
        let ext = makeExtension(send: (response.serverNoContextTakeover, serverBits),
                                receive: (clientNoContext, clientBits))
        return (response.entry, ext)
    }

    // MARK: Broadcast

    /// A whole message compressed without context, as every connection that
    /// negotiated `server_no_context_takeover` with this window takes it:
    /// compressed once for all of them. Nil when it should go uncompressed
    /// (smaller than `minimumSize`) or zlib failed. The view is valid until
    /// the next call.
    public func compressOnce(_ payload: UnsafeRawBufferPointer, windowBits: Int) -> UnsafeRawBufferPointer? {
        guard payload.count >= options.minimumSize else { return nil }
        return pool.compressWhole(payload, windowBits: windowBits)
    }

    // MARK: Client

    /// One offer: the client may be limited (`client_max_window_bits`, bare),
    /// and asks the server for what the options want of it.
    public func offers() -> [ExtensionOffer] {
        [offerParameters.entry]
    }

    var offerParameters: DeflateParameters {
        var offer = DeflateParameters()
        offer.clientMaxWindowBits = options.ownMaxWindowBits < 15 ? .value(options.ownMaxWindowBits) : .bare
        offer.clientNoContextTakeover = !options.ownContextTakeover
        offer.serverNoContextTakeover = !options.peerContextTakeover
        if options.peerMaxWindowBits < 15 { offer.serverMaxWindowBits = options.peerMaxWindowBits }
        return offer
    }

    /// The server's answer; nil refuses it, and the handshake fails (§7.1):
    /// a parameter we did not allow, a window larger than we asked for, or a
    /// context the server keeps though we asked it not to.
    public func confirm(_ response: ExtensionOffer) -> (any MessageExtension)? {
        guard let answer = DeflateParameters(response, isResponse: true) else { return nil }
        let offer = offerParameters
        if offer.serverNoContextTakeover && !answer.serverNoContextTakeover { return nil }
        if let asked = offer.serverMaxWindowBits, (answer.serverMaxWindowBits ?? 15) > asked { return nil }
        var ownBits = options.ownMaxWindowBits
        // Our own window never grows past what the options allow, whatever
        // the answer says.
        if case .value(let bits) = answer.clientMaxWindowBits { ownBits = min(ownBits, bits) }
        let ownNoContext = answer.clientNoContextTakeover || !options.ownContextTakeover
        return makeExtension(send: (ownNoContext, ownBits),
                             receive: (answer.serverNoContextTakeover, answer.serverMaxWindowBits ?? 15))
    }
}
