import WebSocketCore

/// Counters a server or client keeps as it runs: plain integers bumped on the
/// loop thread, read there too (or through `EventLoop.execute`).
public struct WebSocketMetrics: Sendable {
    /// TCP connections accepted (a server), whatever became of them.
    public var connectionsAccepted = 0
    /// TCP connections open now, in the HTTP phase or as WebSockets (a
    /// server's figure, set as they come and go).
    public var connectionsOpen = 0
    /// Handshakes completed: connections that became WebSockets.
    public var webSocketsOpened = 0
    /// Requests refused: answered with an HTTP status (a bad request, an
    /// origin or a subprotocol not allowed, an upgrade hook's refusal, the
    /// connection limit), or dropped because the head timed out or TLS failed.
    /// The sum of the three counts below, so it cannot disagree with them.
    public var handshakesRejected: Int {
        handshakesRejectedByStatus.values.reduce(0, +) + handshakesTimedOut + tlsHandshakesFailed
    }
    /// Requests answered with an error status, by status.
    public var handshakesRejectedByStatus: [UInt16: Int] = [:]
    /// Request heads that did not arrive within `handshakeTimeout` (dropped
    /// without an answer).
    public var handshakesTimedOut = 0
    /// TLS handshakes that failed (plain HTTP on the TLS port, no common
    /// version, an untrusted peer).
    public var tlsHandshakesFailed = 0
    /// Whole data messages received (counted at their last frame).
    public var messagesReceived = 0
    /// Bytes read from the peer once frames began: headers included, and
    /// compressed payloads as they came.
    public var bytesReceived = 0
    /// Whole data messages sent, publications' copies included (a message
    /// dropped by a full queue is not counted).
    public var messagesSent = 0
    /// Payload bytes the application sent (before compression).
    public var bytesSent = 0
    /// Times reading from a peer stopped because its queue passed
    /// `maxBackpressure` with replies to what it sent.
    public var backpressurePauses = 0
    /// Data messages (or pieces of one) not sent: the connection was closing,
    /// or its queue was past the hard cap (`SendStatus.dropped`).
    public var messagesDropped = 0
    /// Pongs received, each with a round-trip time measured (keep-alive pings'
    /// and the application's `ping()`s).
    public var pongsReceived = 0
    /// The sum of those round-trip times, in milliseconds (the mean is this
    /// over `pongsReceived`).
    public var roundTripMillisecondsTotal = 0
    /// Keep-alive pings sent to quiet peers (`keepAliveInterval`).
    public var pingsSent = 0
    /// Connections closed with 1011 because a ping went unanswered for
    /// `keepAliveTimeout`.
    public var deadPeersClosed = 0
    /// TLS handshake steps held over to a later loop iteration by the
    /// per-iteration cap (a flood of new connections).
    public var tlsHandshakesDeferred = 0
    /// Closes by code: the peer's, the server's failure code, or 1006.
    public var closesByCode: [UInt16: Int] = [:]
    /// Publications this loop delivered to its subscribers (each counted
    /// once, however many subscribers it had).
    public var publications = 0
    /// Copies of publications handed to subscribers.
    public var topicMessagesSent = 0
    /// Copies not handed over: the subscriber's queue was at
    /// `maxBackpressure` (it must not stall the others), or it was closing.
    public var topicMessagesDropped = 0

    /// Responses of the static files (`serveFiles`), whatever their status.
    public var fileResponses = 0
    /// Of those, the responses after which the connection stayed open for
    /// another request (HTTP keep-alive).
    public var fileResponsesKeptAlive = 0

    /// All counters at zero.
    public init() {}

    /// Adds `other`'s counts to these: the figures of several loops summed.
    public mutating func add(_ other: WebSocketMetrics) {
        connectionsAccepted += other.connectionsAccepted
        connectionsOpen += other.connectionsOpen
        webSocketsOpened += other.webSocketsOpened
        handshakesRejectedByStatus.merge(other.handshakesRejectedByStatus, uniquingKeysWith: +)
        handshakesTimedOut += other.handshakesTimedOut
        tlsHandshakesFailed += other.tlsHandshakesFailed
        backpressurePauses += other.backpressurePauses
        messagesDropped += other.messagesDropped
        pongsReceived += other.pongsReceived
        roundTripMillisecondsTotal += other.roundTripMillisecondsTotal
        messagesReceived += other.messagesReceived
        bytesReceived += other.bytesReceived
        messagesSent += other.messagesSent
        bytesSent += other.bytesSent
        pingsSent += other.pingsSent
        deadPeersClosed += other.deadPeersClosed
        tlsHandshakesDeferred += other.tlsHandshakesDeferred
        closesByCode.merge(other.closesByCode, uniquingKeysWith: +)
        publications += other.publications
        topicMessagesSent += other.topicMessagesSent
        topicMessagesDropped += other.topicMessagesDropped
        fileResponses += other.fileResponses
        fileResponsesKeptAlive += other.fileResponsesKeptAlive
    }
}

/// The name servers have used for their counters.
public typealias ServerMetrics = WebSocketMetrics
