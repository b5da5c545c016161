import WebSocketClient
import WebSocketCore

/// When a dropped client connection is opened again, and when not
/// (`AsyncWebSocketClient.connections(to:)`), after SignalR's automatic
/// reconnect: a delay before each attempt that grows after each failure,
/// jittered so that the clients a restarted server dropped do not all come
/// back in the same millisecond, and the ends that are final.
///
/// The delays count from the drop: the first attempt waits `firstDelay`
/// (none by default: a server's restart is usually over by the time a new
/// connection arrives), the second `backoff`, and each later one twice the
/// one before, up to `maxDelay`. An attempt that opens starts the count again.
public struct ReconnectPolicy: Sendable {
    /// The wait before the first attempt after a drop.
    public var firstDelay: Duration
    /// The wait before the second attempt; each later one doubles it.
    public var backoff: Duration
    /// The longest wait between attempts.
    public var maxDelay: Duration
    /// Attempts in a row that may fail before the sequence throws the last
    /// one's error (nil: no limit, until the task is cancelled).
    public var maxAttempts: Int?
    /// Each wait is scaled by a random factor in 1 ± `jitter` (0 to 1).
    public var jitter: Double
    /// Whether the first connect is retried too (a service that may start
    /// before its server). By default its failure is thrown at once, as a
    /// wrong URL or a refused handshake should be.
    public var retriesFirstConnect: Bool
    /// Whether the server's close with this code is followed by a new
    /// connection. By default a close that says the server is going away,
    /// restarting, overloaded or broken (1001, 1011–1014) and a lost
    /// connection (1005, 1006) are; a normal closure (1000), a refusal of
    /// what the client sent (1002, 1003, 1007–1010) and application codes
    /// (3000–4999) are final: the same client would be told the same again.
    public var reconnectsAfter: @Sendable (CloseCode) -> Bool = ReconnectPolicy.isTransient
    /// Called when an attempt failed and another follows: the error, and
    /// which attempt it was since the drop (1 is the first), for a log line
    /// or a counter. Runs on the iterating task, before the next wait.
    public var onFailedAttempt: (@Sendable (_ error: WebSocketClientError, _ attempt: Int) -> Void)?

    /// A policy with these waits and limits; by default: at once, then 1,
    /// 2, 4, ... up to 30 seconds, ±20%, without end, the first connect not
    /// retried.
    public init(firstDelay: Duration = .zero, backoff: Duration = .seconds(1), maxDelay: Duration = .seconds(30),
                maxAttempts: Int? = nil, jitter: Double = 0.2, retriesFirstConnect: Bool = false) {
        self.firstDelay = firstDelay
        self.backoff = backoff
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
        self.jitter = jitter
        self.retriesFirstConnect = retriesFirstConnect
    }

    /// The close codes after which a server may well take the client again.
    public static func isTransient(_ code: CloseCode) -> Bool {
        switch code.rawValue {
        case 1001, 1005, 1006, 1011...1014: return true
        default: return false
        }
    }

    /// Whether a failed connect may succeed later: nothing listening, no
    /// name yet, a timeout, a 5xx or 429 answer. A wrong URL, a 4xx answer
    /// or a certificate that is not trusted is final.
    public static func isTransient(_ error: WebSocketClientError) -> Bool {
        switch error {
        case .hostNotFound, .connectionRefused, .connectFailed, .handshakeTimeout, .connectionClosedDuringHandshake,
             .tlsHandshakeFailed:
            return true
        case .handshakeRejected(let status, _):
            return status >= 500 || status == 429
        default:
            return false
        }
    }

    /// A problem with the values, or nil.
    var problem: String? {
        // Bounded, so that doubling a wait can never overflow `Duration`.
        for delay in [firstDelay, backoff, maxDelay] where delay < .zero || delay > .seconds(86_400) {
            return "delays must be from 0 to 24 hours"
        }
        // Attempts with no wait between them would spin on a server that is down.
        if backoff == .zero { return "backoff must be positive" }
        if let maxAttempts, maxAttempts < 1 { return "maxAttempts must be at least 1" }
        if !(0...1).contains(jitter) { return "jitter must be in 0...1" }
        return nil
    }

    /// The wait before attempt `attempt` (1 is the first after a drop), for
    /// a `random` number in 0..<1.
    func delay(beforeAttempt attempt: Int, random: Double) -> Duration {
        var base = attempt <= 1 ? firstDelay : backoff
        if attempt > 2 {
            for _ in 2..<min(attempt, 40) where base < maxDelay { base = base * 2 }
        }
        base = min(base, maxDelay)
        return base * (1 + jitter * (2 * random - 1))
    }
}
