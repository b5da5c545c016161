import Testing
import WebSocketCore

/// A made-up extension for the seam: every received byte decodes to two (so
/// sizes and UTF-8 can be checked on the decoded bytes), every sent byte is
/// halved back. It marks messages with RSV1, as permessage-deflate will.
final class DoublingExtension: MessageExtension {
    var rsvBits: UInt8 { 0x4 }
    private var input: [UInt8] = []
    private var inputFinal = false
    private var output: [UInt8] = []
    /// Decoded output comes in steps of at most this many bytes.
    let step: Int

    init(step: Int = 4) { self.step = step }

    func decode(_ bytes: UnsafeRawBufferPointer, isFinal: Bool) {
        input += bytes
        inputFinal = isFinal
    }

    func nextDecoded() -> ExtensionStep {
        if input.isEmpty {
            if inputFinal {
                inputFinal = false
                output = []
                return .output(UnsafeRawBufferPointer(start: nil, count: 0), endOfMessage: true)
            }
            return .inputUsed
        }
        let take = min(step / 2, input.count)
        output = input.prefix(take).flatMap { [$0, $0] }
        input.removeFirst(take)
        let end = input.isEmpty && inputFinal
        if end { inputFinal = false }
        return output.withUnsafeBytes { .output($0, endOfMessage: end) }
    }

    func shouldEncode(size: Int?) -> Bool { true }
    private var encodeInput: [UInt8] = []
    private var encodeFinal = false
    func encode(_ bytes: UnsafeRawBufferPointer, isFinal: Bool) {
        encodeInput = Array(bytes)
        encodeFinal = isFinal
    }
    func nextEncoded() -> ExtensionStep {
        if encodeInput.isEmpty && !encodeFinal { return .inputUsed }
        output = stride(from: 0, to: encodeInput.count, by: 2).map { encodeInput[$0] }
        encodeInput = []
        let end = encodeFinal
        encodeFinal = false
        return output.withUnsafeBytes { .output($0, endOfMessage: end) }
    }
    func reset() {
        input = []
        output = []
    }
}

@Suite("The extension seam (RFC 6455 §9, RFC 7692 §6): RSV bits, decoded bytes checked")
struct ExtensionSeamTests {
    @Test("a marked message is decoded in steps and delivered decoded", arguments: [Role.server, .client])
    func decodes(role: Role) {
        let h = Harness(role, messageExtension: DoublingExtension())
        let actions = h.feed(h.peer(0x1, Array("abc".utf8), rsv: 0x4))
        let joined = actions.flatMap { if case .message(_, let b, _) = $0 { return b } else { return [] } }
        #expect(joined == Array("aabbcc".utf8))
        let finals = actions.filter { if case .message(_, _, true) = $0 { return true } else { return false } }
        #expect(finals.count == 1)
        if case .message(_, _, let isFinal)? = actions.last { #expect(isFinal) } else { Issue.record("no final chunk") }
        // An unmarked message passes as it is.
        #expect(h.feed(h.peer(0x2, [1, 2])) == [.message(.binary, [1, 2], isFinal: true)])
    }

    @Test("a marked message spanning fragments is decoded across them")
    func acrossFragments() {
        let h = Harness(.server, messageExtension: DoublingExtension())
        let bytes = h.peer(0x2, [1, 2], fin: false, rsv: 0x4) + h.peer(0x0, [3], fin: true)
        let actions = h.feed(bytes)
        let joined = actions.flatMap { if case .message(_, let b, _) = $0 { return b } else { return [] } }
        #expect(joined == [1, 1, 2, 2, 3, 3])
        let finals = actions.filter { if case .message(_, _, true) = $0 { return true } else { return false } }
        #expect(finals.count == 1)
    }

    @Test("UTF-8 is validated on the decoded bytes: valid on the wire, invalid decoded, is 1007")
    func utf8AfterDecoding() {
        let h = Harness(.server, messageExtension: DoublingExtension())
        // "é" is C3 A9; doubled it is C3 C3 A9 A9, which is not UTF-8.
        let actions = h.feed(h.peer(0x1, [0xC3, 0xA9], rsv: 0x4))
        #expect(actions.last == .closed(1007, "", sendClose: true))
    }

    @Test("the message size counts decoded bytes, step by step: a small message that decodes big is 1009")
    func sizeAfterDecoding() {
        let h = Harness(.server, maxMessageSize: 10, messageExtension: DoublingExtension(step: 4))
        // 6 bytes on the wire (under the limit) decode to 12.
        let actions = h.feed(h.peer(0x2, [1, 2, 3, 4, 5, 6], rsv: 0x4))
        #expect(actions.last == .closed(1009, "", sendClose: true))
        // It failed after the step that passed the limit (8 + 4 > 10), not after decoding everything.
        #expect(actions.count == 3)
    }

    @Test("RFC 7692 §6.1: RSV1 on a continuation or a control frame is 1002, even when negotiated")
    func rsvPlacement() {
        let h = Harness(.server, messageExtension: DoublingExtension())
        #expect(h.feed(h.peer(0x2, [1], fin: false) + h.peer(0x0, [2], rsv: 0x4)).last == .closed(1002, "", sendClose: true))
        let c = Harness(.server, messageExtension: DoublingExtension())
        #expect(c.feed(c.peer(0x9, [], rsv: 0x4)) == [.closed(1002, "", sendClose: true)])
    }

    @Test("negotiation: offers parse, the server accepts the first it can, the client refuses what it did not offer")
    func negotiation() throws {
        let offers = try #require(ExtensionOffer.parse(["x-double; step=4, x-double", "other"]))
        #expect(offers.map(\.name) == ["x-double", "x-double", "other"])
        #expect(offers[0].parameters == [.init("step", "4")])
        #expect(ExtensionOffer.parse(["bad name; a"]) == nil)
        let accepted = ExtensionNegotiation.accept(offers: offers, supported: [DoublingNegotiator()])
        #expect(accepted?.response == "x-double")
        #expect(ExtensionNegotiation.accept(offers: [ExtensionOffer(name: "other")], supported: [DoublingNegotiator()]) == nil)
        if case .success = ExtensionNegotiation.confirm(response: [ExtensionOffer(name: "other")], supported: [DoublingNegotiator()]) {
            Issue.record("an unrequested extension was accepted")
        }
        let confirmed = ExtensionNegotiation.confirm(response: [ExtensionOffer(name: "x-double")], supported: [DoublingNegotiator()])
        #expect((try? confirmed.get()) != nil)
    }
}

struct DoublingNegotiator: ExtensionNegotiator {
    var name: String { "x-double" }
    func accept(_ offers: [ExtensionOffer]) -> (response: ExtensionOffer, extension: any MessageExtension)? {
        guard offers.contains(where: { $0.parameters.isEmpty }) else { return nil }
        return (ExtensionOffer(name: name), DoublingExtension())
    }
    func offers() -> [ExtensionOffer] { [ExtensionOffer(name: name)] }
    func confirm(_ response: ExtensionOffer) -> (any MessageExtension)? {
        response.parameters.isEmpty ? DoublingExtension() : nil
    }
}
