import WebSocketClient
import WebSocketCore

extension AsyncWebSocketClient {
    /// Connections to one URL, one after another: the next opens once the
    /// one before has ended in a way its `policy` takes back (a server
    /// restarting, a lost network), after the policy's delay. What SignalR's
    /// automatic reconnect gives a hub connection, as a sequence:
    ///
    /// ```swift
    /// for try await connection in AsyncWebSocketClient.connections(to: url) {
    ///     try await connection.send(text: "subscribe prices")   // again on every connection
    ///     for try await message in connection.messages { handle(message) }
    /// }
    /// ```
    ///
    /// Each connection is new: what the application set up on the last one
    /// (subscriptions, a login) it sets up again in the loop's body, and
    /// nothing sent on a connection that dropped is sent again. The sequence
    /// ends (nil) after a close this end asked for or a close the policy
    /// calls final; it throws the connect error the policy calls final, or
    /// the last one once `maxAttempts` in a row failed, or
    /// `CancellationError` when the task is cancelled while it waits.
    ///
    /// The next connection opens when the loop comes round, once the one
    /// before has ended (its `messages` finished). A body that leaves a
    /// connection still open is done with it: the sequence closes it (1000)
    /// and ends. A body that throws leaves the loop and its connection as
    /// they are: close it in the body (`defer`) if it must not outlive it.
    public static func connections(to url: String, options: WebSocketClientOptions = WebSocketClientOptions(),
                                   reconnect policy: ReconnectPolicy = ReconnectPolicy(),
                                   inboundLimit: Int = 1 << 20,
                                   outboundLimit: Int = 1 << 20) -> ReconnectingConnections {
        ReconnectingConnections(url: url, options: options, policy: policy, inboundLimit: inboundLimit,
                                outboundLimit: outboundLimit)
    }
}

/// The connections of `AsyncWebSocketClient.connections(to:)`, in order.
public struct ReconnectingConnections: AsyncSequence, Sendable {
    /// Each element is one open connection.
    public typealias Element = AsyncWebSocketConnection
    let url: String
    let options: WebSocketClientOptions
    let policy: ReconnectPolicy
    let inboundLimit: Int
    let outboundLimit: Int

    /// An iterator that opens each connection when asked for it.
    public func makeAsyncIterator() -> Iterator { Iterator(sequence: self) }

    /// Opens each connection when asked for it, after the last has ended.
    public struct Iterator: AsyncIteratorProtocol {
        let sequence: ReconnectingConnections
        /// The connection handed out last, until it ends.
        var current: AsyncWebSocketConnection?
        var started = false
        var finished = false

        /// The next connection; nil once the sequence is over.
        public mutating func next() async throws -> AsyncWebSocketConnection? {
            if finished { return nil }
            do {
                if let problem = sequence.policy.problem { throw AsyncWebSocketError.invalidOption(problem) }
                if let current {
                    self.current = nil
                    guard let end = current.end else {
                        // The body is done with a connection that is still
                        // open: it closes, and as a close of this end's, it
                        // ends the sequence.
                        finished = true
                        try? await current.close()
                        return nil
                    }
                    guard !end.closedHere, let code = end.code, sequence.policy.reconnectsAfter(code) else {
                        finished = true
                        return nil
                    }
                    return try await open(afterDrop: true)
                }
                if started { return nil }
                started = true
                return try await open(afterDrop: false)
            } catch {
                finished = true
                throw error
            }
        }

        /// Attempts until one opens: after a drop each waits the policy's
        /// delay first; a first connect goes at once, and is retried only if
        /// the policy says so.
        private mutating func open(afterDrop: Bool) async throws -> AsyncWebSocketConnection {
            let policy = sequence.policy
            var attempt = 1
            while true {
                if afterDrop || attempt > 1 {
                    try await Task.sleep(for: policy.delay(beforeAttempt: attempt, random: Double.random(in: 0..<1)))
                }
                do {
                    let connection = try await AsyncWebSocketClient.connect(
                        to: sequence.url, options: sequence.options, inboundLimit: sequence.inboundLimit,
                        outboundLimit: sequence.outboundLimit)
                    current = connection
                    return connection
                } catch let error as WebSocketClientError {
                    let retries = afterDrop || policy.retriesFirstConnect
                    guard retries, ReconnectPolicy.isTransient(error) else { throw error }
                    if let maxAttempts = policy.maxAttempts, attempt >= maxAttempts { throw error }
                    policy.onFailedAttempt?(error, attempt)
                    attempt += 1
                }
            }
        }
    }
}
