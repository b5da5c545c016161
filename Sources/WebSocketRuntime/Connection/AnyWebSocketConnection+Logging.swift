import Logging
import UVKit

/// Connection events at debug level. Each is once per connection or rarer
/// (never per message), and when the level is above debug it costs the test
/// of one cached flag: the message and metadata are not built.
extension AnyWebSocketConnection {
    func logEvent(_ message: @autoclosure () -> String, _ metadata: @autoclosure () -> Logger.Metadata = [:]) {
        guard endpointCore.logsDebug else { return }
        var all = metadata()
        all["peer"] = "\(peerAddress.map { "\($0)" } ?? "gone")"
        all["role"] = "\(endpointCore.settings.role)"
        endpointCore.logger.debug("\(message())", metadata: all)
    }

    /// The connection stopped reading: the queue for this peer passed
    /// `maxBackpressure` with replies to what it sent.
    func readingPausedForBackpressure() {
        endpointCore.metrics.backpressurePauses &+= 1
        logEvent("backpressure: reading paused", ["queued": "\(queuedCount)",
                                                   "limit": "\(endpointCore.settings.maxBackpressure)"])
    }
}
