import WebSocketClient

/// The `connect` scenario: each of the --connections slots opens a
/// connection (TCP, TLS for wss://, the upgrade), closes it with 1000 once it
/// is open, and opens the next, for the whole run. The report counts the
/// handshakes (as its messages) and their latency, from the connect call to
/// the open connection.
extension Bench {
    func startChurn() {
        client.handler.recordsEarlyCloses = false
        for _ in 0..<config.connections { churnOnce() }
        _ = timer(after: UInt64(config.warmup * 1000)) { [unowned self] in startWindow() }
    }

    private func churnOnce() {
        guard !stopping else { return }
        let started = Bench.nanoseconds()
        client.connect(to: config.url) { [unowned self] result in
            switch result {
            case .success(let socket):
                recordEcho(latencyNanoseconds: Bench.nanoseconds() &- started)
                socket.close()
            case .failure(let error):
                if stopping { return }
                failed += 1
                errors[ErrorClass(error), default: 0] += 1
                if case .handshakeRejected(let status, _) = error { handshakeStatuses[status, default: 0] += 1 }
                if firstError == nil { firstError = "\(error)" }
            }
            churnOnce()
        }
    }
}
