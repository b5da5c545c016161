import WebSocketServer

/// The article's `Echo`: every chunk goes straight back with the same message
/// type and end-of-message flag, so a message is echoed fragment by fragment
/// without being assembled. The close reply, with the client's status and
/// description, is the protocol's own.
final class EchoHandler: WebSocketHandler {
    func didReceive(_ connection: WebSocketConnection<EchoHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        // The status needs no handling here: past maxBackpressure the server
        // stops reading from this peer, which bounds what an echo can queue.
        connection.send(chunk, type: type, isFinal: isFinal)
    }
}
