/// A whole WebSocket message, owned: it outlives the loop callback that read
/// it, so it can cross to a task. Text is the message's validated UTF-8 (RFC
/// 6455 §8.1: the connection fails with 1007 before an invalid one arrives).
public enum WebSocketMessage: Sendable, Hashable {
    /// A text message.
    case text(String)
    /// A binary message.
    case binary([UInt8])

    /// The payload's size in bytes: what the async face's buffer limits count.
    public var byteCount: Int {
        switch self {
        case .text(let text): text.utf8.count
        case .binary(let bytes): bytes.count
        }
    }
}
