import WebSocketCore
@testable import WebSocketCompression

/// The state machine with permessage-deflate, fed wire bytes as a peer sends
/// them (masked toward a server, §5.1), reporting what it hands up.
final class DeflateHarness {
    enum Event: Equatable {
        case message(MessageType, [UInt8])
        case closed(UInt16)
    }

    var machine: WebSocketStateMachine
    var ring = ByteRing(capacity: 4096)
    let role: Role
    private var partial: [UInt8] = []
    /// Bytes handed up before a failure, to bound what a bomb costs.
    private(set) var deliveredBytes = 0
    private(set) var largestChunk = 0

    init(_ role: Role, ext: (any MessageExtension)?, maxMessageSize: Int = 1 << 24) {
        self.role = role
        machine = WebSocketStateMachine(role: role, maxMessageSize: maxMessageSize,
                                        keepAlive: KeepAlivePolicy(interval: 0, timeout: 0), closeTimeout: 5000,
                                        messageExtension: ext)
    }

    deinit { ring.deallocate() }

    func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode]
        let masked = role == .server
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            bytes.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes += [maskBit | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            bytes.append(maskBit | 127)
            bytes += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        guard masked else { return bytes + payload }
        let key: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        return bytes + key + payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
    }

    /// Feeds `bytes` in pieces of `piece` bytes; returns whole messages and closes.
    func feed(_ bytes: [UInt8], piece: Int = .max) -> [Event] {
        var events: [Event] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + min(piece, ring.freeCount))
            bytes[offset..<end].withUnsafeBytes { _ = ring.write($0) }
            offset = end
            while true {
                switch machine.receive(&ring, now: 0) {
                case .needMoreData:
                    break
                case .message(let chunk, let type, let isFinal):
                    deliveredBytes += chunk.count
                    largestChunk = max(largestChunk, chunk.count)
                    partial += chunk
                    if isFinal {
                        events.append(.message(type, partial))
                        partial = []
                    }
                    continue
                case .sendPong, .pong:
                    continue
                case .closed(let code, _, _):
                    events.append(.closed(code.rawValue))
                    return events
                }
                break
            }
        }
        return events
    }
}

/// Runs an extension's encoder over one message and returns the frames'
/// payloads (one per step) and whether the last step ended the message.
///
/// A shared extension (no context either way) codes nothing itself: as the
/// runtime does, a state machine lends an instance for the message.
func encodeMessage(_ ext: any MessageExtension, _ input: [UInt8], pieces: Int = 1) -> [[UInt8]] {
    if ext is SharedMessageExtension {
        var machine = WebSocketStateMachine(role: .server, maxMessageSize: 1 << 24, messageExtension: ext)
        let steps = encodeMessage(machine.beginSending()!, input, pieces: pieces)
        machine.finishedSending()
        return steps
    }
    var steps: [[UInt8]] = []
    let size = max(1, (input.count + pieces - 1) / pieces)
    var chunks = stride(from: 0, to: input.count, by: size).map { Array(input[$0..<min(input.count, $0 + size)]) }
    if chunks.isEmpty { chunks = [[]] }
    for (index, chunk) in chunks.enumerated() {
        chunk.withUnsafeBytes { ext.encode($0, isFinal: index == chunks.count - 1) }
        loop: while true {
            switch ext.nextEncoded() {
            case .inputUsed: break loop
            case .failure(let code): Issue.record("encode failed: \(code)"); return steps
            case .output(let bytes, let end):
                steps.append(Array(bytes))
                if end { break loop }
            }
        }
    }
    return steps
}

/// A server-side and a client-side extension agreed through the negotiators,
/// as a handshake would make them.
func negotiatedPair(server: CompressionOptions = CompressionOptions(), client: CompressionOptions = .forClient)
    -> (server: any MessageExtension, client: any MessageExtension, response: String)? {
    let serverSide = PermessageDeflate(options: server)
    let clientSide = PermessageDeflate(options: client)
    guard let (response, serverExt) = serverSide.accept(clientSide.offers()),
          let clientExt = clientSide.confirm(response) else { return nil }
    return (serverExt, clientExt, response.headerValue)
}

import Testing
