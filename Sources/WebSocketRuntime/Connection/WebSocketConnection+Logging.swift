import Logging
import UVKit

/// Connection events at debug level. Each is once per connection or rarer
/// (never per message), and when the level is above debug it costs the test
/// of one cached flag: the message and metadata are not built.
extension WebSocketConnection {
    func logEvent(_ message: @autoclosure () -> String, _ metadata: @autoclosure () -> Logger.Metadata = [:]) {
        guard endpoint.logsDebug else { return }
        var all = metadata()
        all["peer"] = "\(peerAddress.map { "\($0)" } ?? "gone")"
        all["role"] = "\(endpoint.settings.role)"
        endpoint.logger.debug("\(message())", metadata: all)
    }

    /// The peer's address, asked of the socket (for logs; not kept).
    package var peerAddress: SocketAddress? { stream.peerAddress() }

    /// The transport stopped reading: the queue for this peer passed
    /// `maxBackpressure` with replies to what it sent.
    func readingPausedForBackpressure() {
        endpoint.metrics.backpressurePauses &+= 1
        logEvent("backpressure: reading paused", ["queued": "\(stream.queuedCount)",
                                                   "limit": "\(endpoint.settings.maxBackpressure)"])
    }
}
