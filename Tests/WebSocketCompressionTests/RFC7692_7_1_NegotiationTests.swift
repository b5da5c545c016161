import Testing
import WebSocketCore
@testable import WebSocketCompression

/// RFC 7692 §7.1: what the server answers to each offer, what the client
/// accepts of each answer. Byte-for-byte header values.
@Suite("RFC 7692 §7.1: negotiating permessage-deflate")
struct NegotiationTests {
    func offers(_ header: String) -> [ExtensionOffer] {
        ExtensionOffer.parse([Substring(header)]) ?? []
    }

    func serverAnswer(_ header: String, _ options: CompressionOptions = CompressionOptions()) -> String? {
        PermessageDeflate(options: options).accept(offers(header))?.response.headerValue
    }

    @Test("a browser's offer: the server keeps no context and limits the client's window to 12 bits")
    func browserOffer() throws {
        #expect(serverAnswer("permessage-deflate; client_max_window_bits")
            == "permessage-deflate; server_no_context_takeover; client_max_window_bits=12")
        let (_, ext) = try #require(PermessageDeflate(options: CompressionOptions()).accept(offers("permessage-deflate; client_max_window_bits")))
        let deflate = try #require(ext as? DeflateExtension)
        #expect(deflate.sendsWithoutContext && !deflate.receivesWithoutContext)
        #expect(deflate.receiveWindowBits == 12 && deflate.sendWindowBits == 15)
    }

    @Test("a client that cannot be limited is asked to keep no context")
    func unlimitedClient() throws {
        #expect(serverAnswer("permessage-deflate")
            == "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        // With the full window allowed, it keeps its context.
        var options = CompressionOptions()
        options.peerMaxWindowBits = 15
        #expect(serverAnswer("permessage-deflate", options) == "permessage-deflate; server_no_context_takeover")
    }

    @Test("the client's window: a value is lowered to the server's limit, never raised")
    func clientWindowValue() {
        #expect(serverAnswer("permessage-deflate; client_max_window_bits=10")
            == "permessage-deflate; server_no_context_takeover; client_max_window_bits=10")
        #expect(serverAnswer("permessage-deflate; client_max_window_bits=15")
            == "permessage-deflate; server_no_context_takeover; client_max_window_bits=12")
    }

    @Test("the server's window and context: what the client asks for is honoured")
    func serverParameters() throws {
        var options = CompressionOptions()
        options.ownContextTakeover = true
        #expect(serverAnswer("permessage-deflate; server_max_window_bits=10", options)
            == "permessage-deflate; client_no_context_takeover; server_max_window_bits=10")
        #expect(serverAnswer("permessage-deflate; server_no_context_takeover", options)
            == "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        // Quoted values are the same token (§7.1, RFC 6455 §9.1).
        #expect(serverAnswer("permessage-deflate; server_max_window_bits=\"9\"; client_max_window_bits", options)
            == "permessage-deflate; server_max_window_bits=9; client_max_window_bits=12")
        // A server configured for a smaller window says so unasked.
        options.ownMaxWindowBits = 11
        #expect(serverAnswer("permessage-deflate; client_max_window_bits", options)
            == "permessage-deflate; server_max_window_bits=11; client_max_window_bits=12")
    }

    @Test("malformed, unknown or repeated parameters decline that offer; the next one is taken",
          arguments: ["server_max_window_bits", "server_max_window_bits=16", "server_max_window_bits=7",
                      "server_max_window_bits=08", "server_max_window_bits=abc", "client_max_window_bits=0",
                      "server_no_context_takeover=1", "client_no_context_takeover=yes",
                      "server_no_context_takeover; server_no_context_takeover",
                      "client_max_window_bits; client_max_window_bits=10", "foo", "x-mode=fast"])
    func malformedDeclined(parameters: String) {
        #expect(serverAnswer("permessage-deflate; " + parameters) == nil)
        #expect(serverAnswer("permessage-deflate; \(parameters), permessage-deflate; client_max_window_bits")
            == "permessage-deflate; server_no_context_takeover; client_max_window_bits=12")
    }

    @Test("window 8: accepted, and compressed so that a 256-byte window decodes it")
    func windowEight() throws {
        var options = CompressionOptions()
        options.ownContextTakeover = true
        let (response, ext) = try #require(PermessageDeflate(options: options)
            .accept(offers("permessage-deflate; server_max_window_bits=8")))
        #expect(response.headerValue == "permessage-deflate; client_no_context_takeover; server_max_window_bits=8")
        let text = Array(String(repeating: "a longer repeated phrase, and again: ", count: 300).utf8)
        let wire = encodeMessage(ext, text).flatMap { $0 }
        #expect(wire.count < text.count)
        #expect(try rawInflate(wire + [0, 0, 0xFF, 0xFF], windowBits: 8) == text)
    }

    @Test("the client's offer, from its options")
    func clientOffer() {
        #expect(PermessageDeflate(options: .forClient).offers().map(\.headerValue)
            == ["permessage-deflate; client_max_window_bits"])
        var options = CompressionOptions.forClient
        options.ownContextTakeover = false
        options.peerContextTakeover = false
        options.peerMaxWindowBits = 10
        options.ownMaxWindowBits = 11
        #expect(PermessageDeflate(options: options).offers().map(\.headerValue)
            == ["permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11"])
    }

    @Test("the client refuses an answer it did not allow", arguments: [
        "permessage-deflate; client_max_window_bits",           // a response must give the value
        "permessage-deflate; server_max_window_bits=11",        // more than the 10 asked for
        "permessage-deflate; server_max_window_bits=10",        // keeps a context it was asked not to
        "permessage-deflate; server_no_context_takeover; mystery",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    ])
    func clientRefuses(answer: String) throws {
        var options = CompressionOptions.forClient
        options.peerContextTakeover = false
        options.peerMaxWindowBits = 10
        let entry = try #require(offers(answer).first)
        #expect(PermessageDeflate(options: options).confirm(entry) == nil)
    }

    @Test("the client takes a valid answer, with the window the server set for it")
    func clientAccepts() throws {
        let entry = try #require(offers("permessage-deflate; server_no_context_takeover; client_max_window_bits=9").first)
        let ext = try #require(PermessageDeflate(options: .forClient).confirm(entry) as? DeflateExtension)
        #expect(ext.sendWindowBits == 9 && !ext.sendsWithoutContext)
        #expect(ext.receivesWithoutContext)
    }

    @Test("server and client agree through their own negotiators")
    func bothEnds() throws {
        let pair = try #require(negotiatedPair())
        #expect(pair.response == "permessage-deflate; server_no_context_takeover; client_max_window_bits=12")
        let client = try #require(pair.client as? DeflateExtension)
        #expect(client.sendWindowBits == 12 && client.receivesWithoutContext)
    }
}
