import WebSocketCore

/// Who published: 16 random bytes a server draws at start, so that it can
/// drop its own publications when Redis hands them back, and receivers can
/// keep one sequence per publisher.
public struct NodeIdentity: Hashable, Sendable, CustomStringConvertible {
    /// The identity's first 8 bytes.
    public let high: UInt64
    /// Its last 8 bytes.
    public let low: UInt64

    /// An identity from its two halves (as decoded from a message).
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A fresh identity from the system's random generator.
    public static func random() -> NodeIdentity {
        var generator = SystemRandomNumberGenerator()
        return NodeIdentity(high: generator.next(), low: generator.next())
    }

    /// Its first 8 hex digits, for logs.
    public var description: String {
        let hex = String(high, radix: 16) + String(low, radix: 16)
        return String(hex.prefix(8))
    }
}

/// A publication on the wire between servers: a fixed 29-byte head, then the
/// payload as the publisher gave it.
///
///     0   "UVW1"                    4 bytes, the format
///     4   the publisher's identity  16 bytes
///     20  sequence                  8 bytes, big-endian: per topic and publisher, from 1
///     28  type                      1 byte: 1 text, 2 binary
///     29  payload
public struct BackplaneMessage {
    /// The bytes before the payload.
    public static let headLength = 29
    static let magic: [UInt8] = Array("UVW1".utf8)

    /// The publishing server.
    public var node: NodeIdentity
    /// Its sequence number, per topic and publisher, from 1.
    public var sequence: UInt64
    /// Text or binary, as published.
    public var type: MessageType
    /// A view into the bytes it was decoded from.
    public var payload: UnsafeRawBufferPointer

    /// Writes the head into `head` (29 bytes).
    public static func writeHead(node: NodeIdentity, sequence: UInt64, type: MessageType,
                                 into head: UnsafeMutableRawBufferPointer) {
        head.copyBytes(from: magic)
        head.storeBytes(of: node.high.bigEndian, toByteOffset: 4, as: UInt64.self)
        head.storeBytes(of: node.low.bigEndian, toByteOffset: 12, as: UInt64.self)
        head.storeBytes(of: sequence.bigEndian, toByteOffset: 20, as: UInt64.self)
        head[28] = type == .text ? 1 : 2
    }

    /// Decodes `bytes`; nil when they are not this format (another
    /// program's message on the channel).
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> BackplaneMessage? {
        guard bytes.count >= headLength, bytes.prefix(4).elementsEqual(magic) else { return nil }
        let type: MessageType
        switch bytes[28] {
        case 1: type = .text
        case 2: type = .binary
        default: return nil
        }
        let node = NodeIdentity(high: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt64.self)),
                                low: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt64.self)))
        let sequence = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 20, as: UInt64.self))
        return BackplaneMessage(node: node, sequence: sequence, type: type,
                                payload: UnsafeRawBufferPointer(rebasing: bytes[headLength...]))
    }
}

/// Each publisher's last sequence per topic, to count what went missing
/// between servers (a Redis outage, a subscription that came late).
public struct GapTracker {
    private struct Key: Hashable {
        var node: NodeIdentity
        var topic: String
    }
    private var last: [Key: UInt64] = [:]

    /// A tracker that has seen nothing.
    public init() {}

    /// Records `sequence` from `node` on `topic`; returns how many messages
    /// were skipped since the last one seen (0 for the first one seen, in
    /// order or not: a subscriber that joins late has missed nothing).
    public mutating func record(node: NodeIdentity, topic: String, sequence: UInt64) -> UInt64 {
        let key = Key(node: node, topic: topic)
        guard let previous = last[key] else {
            last[key] = sequence
            return 0
        }
        if sequence <= previous { return 0 }
        last[key] = sequence
        return sequence - previous - 1
    }

    /// Forgets a topic this server no longer subscribes to: when it does
    /// again, the first message starts afresh.
    public mutating func forget(topic: String) {
        last = last.filter { $0.key.topic != topic }
    }
}
