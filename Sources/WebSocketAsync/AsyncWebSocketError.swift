import WebSocketCore

/// Why a call of the async face failed.
public enum AsyncWebSocketError: Error, Sendable, Equatable {
    /// The connection is closed or closing: nothing more can be sent. `code`
    /// is how it ended, once it has (nil while its closing handshake runs).
    case closed(code: CloseCode?)
    /// A second task iterated `messages` while one was already waiting: a
    /// connection's messages have one consumer.
    case concurrentIteration
    /// The loop the connection lives on has stopped taking work (its server
    /// is shutting down).
    case loopClosed
    /// The async clients' loop could not be made or started; the text says why.
    case loopUnavailable(String)
    /// An option is out of range; the text says which.
    case invalidOption(String)
}
