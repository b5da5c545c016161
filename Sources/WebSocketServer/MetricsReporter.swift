import CoreMetrics
import WebSocketRuntime

/// Hands one loop's counters to swift-metrics: what grew since the last
/// report, as counter increments, the open connections as a gauge and each
/// round-trip time as a timer sample, all with the loop's index as the
/// `loop` dimension. Called from the server's metrics timer (and before a
/// scrape served by the same loop), never per message: the message path
/// bumps plain integers in `WebSocketMetrics` and nothing else.
///
/// The names follow Prometheus' conventions (`_total` for counters), since
/// that is the backend most servers bootstrap. Loop thread only.
final class MetricsReporter {
    private var last = WebSocketMetrics()
    private let loop: [(String, String)]

    private let open: Gauge
    private let accepted: Counter
    private let upgraded: Counter
    private let messagesIn: Counter
    private let messagesOut: Counter
    private let bytesIn: Counter
    private let bytesOut: Counter
    private let pauses: Counter
    private let dropped: Counter
    private let pings: Counter
    private let deadPeers: Counter
    private let publications: Counter
    private let topicSent: Counter
    private let topicDropped: Counter
    private let files: Counter
    private let roundTrip: CoreMetrics.Timer
    private let refusedTimeout: Counter
    private let refusedTLS: Counter
    /// Made as each status or code first appears (a handful in a server's life).
    private var refusedByStatus: [UInt16: Counter] = [:]
    private var closes: [UInt16: Counter] = [:]

    init(loopIndex: Int) {
        loop = [("loop", "\(loopIndex)")]
        open = Gauge(label: "websocket_connections_open", dimensions: loop)
        accepted = Counter(label: "websocket_connections_accepted_total", dimensions: loop)
        upgraded = Counter(label: "websocket_handshakes_accepted_total", dimensions: loop)
        messagesIn = Counter(label: "websocket_messages_received_total", dimensions: loop)
        messagesOut = Counter(label: "websocket_messages_sent_total", dimensions: loop)
        bytesIn = Counter(label: "websocket_bytes_received_total", dimensions: loop)
        bytesOut = Counter(label: "websocket_bytes_sent_total", dimensions: loop)
        pauses = Counter(label: "websocket_backpressure_pauses_total", dimensions: loop)
        dropped = Counter(label: "websocket_messages_dropped_total", dimensions: loop)
        pings = Counter(label: "websocket_keepalive_pings_total", dimensions: loop)
        deadPeers = Counter(label: "websocket_keepalive_timeouts_total", dimensions: loop)
        publications = Counter(label: "websocket_publications_total", dimensions: loop)
        topicSent = Counter(label: "websocket_topic_messages_sent_total", dimensions: loop)
        topicDropped = Counter(label: "websocket_topic_messages_dropped_total", dimensions: loop)
        files = Counter(label: "websocket_file_responses_total", dimensions: loop)
        roundTrip = CoreMetrics.Timer(label: "websocket_round_trip_seconds", dimensions: loop,
                                      preferredDisplayUnit: .seconds)
        refusedTimeout = Counter(label: Self.refusedLabel, dimensions: loop + [("status", "timeout")])
        refusedTLS = Counter(label: Self.refusedLabel, dimensions: loop + [("status", "tls")])
        // Present from the start at zero, so a scrape before the first
        // connection shows the series rather than nothing.
        open.record(0)
    }

    /// Reports what changed since the last call; takes the round-trip samples.
    func report(_ now: WebSocketMetrics, roundTrips: inout RoundTripSamples) {
        open.record(now.connectionsOpen)
        Self.add(accepted, now.connectionsAccepted, last.connectionsAccepted)
        Self.add(upgraded, now.webSocketsOpened, last.webSocketsOpened)
        Self.add(messagesIn, now.messagesReceived, last.messagesReceived)
        Self.add(messagesOut, now.messagesSent, last.messagesSent)
        Self.add(bytesIn, now.bytesReceived, last.bytesReceived)
        Self.add(bytesOut, now.bytesSent, last.bytesSent)
        Self.add(pauses, now.backpressurePauses, last.backpressurePauses)
        Self.add(dropped, now.messagesDropped, last.messagesDropped)
        Self.add(pings, now.pingsSent, last.pingsSent)
        Self.add(deadPeers, now.deadPeersClosed, last.deadPeersClosed)
        Self.add(publications, now.publications, last.publications)
        Self.add(topicSent, now.topicMessagesSent, last.topicMessagesSent)
        Self.add(topicDropped, now.topicMessagesDropped, last.topicMessagesDropped)
        Self.add(files, now.fileResponses, last.fileResponses)
        Self.add(refusedTimeout, now.handshakesTimedOut, last.handshakesTimedOut)
        Self.add(refusedTLS, now.tlsHandshakesFailed, last.tlsHandshakesFailed)
        addByKey(now.handshakesRejectedByStatus, last.handshakesRejectedByStatus, to: &refusedByStatus,
                 label: Self.refusedLabel, dimension: "status")
        addByKey(now.closesByCode, last.closesByCode, to: &closes, label: "websocket_closes_total", dimension: "code")
        roundTrips.drain { roundTrip.recordMilliseconds($0) }
        last = now
    }

    private static let refusedLabel = "websocket_handshakes_refused_total"

    /// The growth of each key's count to its counter, one series per key
    /// (`dimension` = the key), made the first time the key appears.
    private func addByKey(_ now: [UInt16: Int], _ before: [UInt16: Int], to counters: inout [UInt16: Counter],
                          label: String, dimension: String) {
        for (key, count) in now {
            if let counter = counters[key] {
                Self.add(counter, count, before[key] ?? 0)
            } else {
                let made = Counter(label: label, dimensions: loop + [(dimension, "\(key)")])
                counters[key] = made
                Self.add(made, count, before[key] ?? 0)
            }
        }
    }

    private static func add(_ counter: Counter, _ now: Int, _ before: Int) {
        if now > before { counter.increment(by: Int64(now - before)) }
    }
}
