import WebSocketClient

/// The client handler of every load connection: the echo comes back here and
/// goes to the connection's bookkeeping, held in the connection's own typed
/// data (lent without a retain per message).
final class BenchHandler: WebSocketHandler {
    typealias ConnectionData = Unmanaged<BenchConnection>

    func didReceive(_ connection: WebSocketConnection<BenchHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        // No data yet: a message in the same read as the 101 (a chat's join
        // notice), before the connect's completion took the connection.
        guard let data = connection.data else { return }
        data._withUnsafeGuaranteedRef { $0.received(chunk, isFinal: isFinal) }
    }

    func didReceivePing(_ connection: WebSocketConnection<BenchHandler>, payload: UnsafeRawBufferPointer) {
        connection.data?._withUnsafeGuaranteedRef { $0.pingsAnswered += 1 }
    }

    /// Closes that came before the connect's completion (the server's close
    /// frame in the same read as its 101), for the completion to report.
    var closedBeforeCompletion: [ObjectIdentifier: (code: UInt16, reason: String)] = [:]
    /// False in the connect scenario, whose connections close with no data
    /// and must leave nothing behind.
    var recordsEarlyCloses = true

    func didClose(_ connection: WebSocketConnection<BenchHandler>, code: CloseCode, reason: String) {
        guard let data = connection.data else {
            if recordsEarlyCloses { closedBeforeCompletion[ObjectIdentifier(connection)] = (code.rawValue, reason) }
            return
        }
        connection.data = nil
        let c = data.takeUnretainedValue()
        if c.state != .closed && !c.bench.stopping {
            c.bench.closedByPeer(c, code: code.rawValue, reason: reason)
        }
    }
}
