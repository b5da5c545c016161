import WebSocketServer

/// The sample's echo, for the tests: each chunk back as it came.
final class EchoHandler: WebSocketHandler {
    func didReceive(_ connection: WebSocketConnection<EchoHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        connection.send(chunk, type: type, isFinal: isFinal)
    }
}
