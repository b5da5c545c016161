import Foundation
import Testing
@testable import WebSocketAsync
import WebSocketClient
import WebSocketCore
import UVKit
import WebSocketServer

/// `AsyncWebSocketClient.connections(to:)`: a client that connects again
/// after its server restarts, waits as its policy says, and stops where the
/// policy says, against real servers on 127.0.0.1 that stop and start again
/// on the same port. Inside the async face's serialized suite: never beside
/// its slow-consumer test, whose figure is the process's RSS.
///
/// The time limit only catches a hang: alone the suite takes about a second,
/// but in a full `make asan` run the synchronous suites hold both threads of
/// the concurrency pool for minutes at a time, and these tasks wait for one
/// (74 s once, against a limit of 60).
extension AsyncFaceTests {
    @Suite("Reconnecting client connections", .timeLimit(.minutes(5)))
    struct Reconnecting {
        /// A running server: an async group of one loop with `body` on `path`.
        struct Server: Sendable {
            let group: WebSocketServerGroup<AsyncWebSocketHandler>
            let running: Task<Void, Error>
            let port: Int

            /// Starts one on `port` (0: any free port).
            static func start(port: Int = 0, path: String = "/ws",
                              body: @escaping AsyncWebSocketHandler.Body = Reconnecting.echo) async throws -> Server {
                let group = try WebSocketServerGroup(loops: 1, sharedHandler: try AsyncWebSocketHandler(body))
                group.route(webSocket: path)
                let bound = try group.listen(host: "127.0.0.1", port: port)
                let running = Task { try await group.run() }
                _ = await group.metrics()
                return Server(group: group, running: running, port: bound)
            }

            /// Shuts it down (1001 to every client) and waits until it has.
            func stop() async throws {
                group.requestShutdown(drainTimeout: .seconds(5))
                try await running.value
            }
        }

        struct Broken: Error {}

        static let echo: AsyncWebSocketHandler.Body = { connection in
            for try await message in connection.messages { try await connection.send(message) }
        }

        /// No wait, no jitter: the figures below are the policy's own.
        static let quick = ReconnectPolicy(firstDelay: .milliseconds(50), backoff: .milliseconds(100),
                                           maxDelay: .milliseconds(400), jitter: 0)

        @Test("a restarted server is connected again once it is back, after refused attempts at the policy's waits")
        func reconnectsAcrossRestarts() async throws {
            let first = try await Server.start()
            let port = first.port
            let clock = ContinuousClock()
            // The server comes back once the client's second attempt after a
            // drop has been refused: whatever the machine's load, each
            // reconnect then waited 50 + 100 + 200 ms at least.
            let restart = Lock<Task<Server, Error>?>(nil)
            let failures = Lock<[(WebSocketClientError, Int)]>([])
            var policy = Self.quick
            policy.onFailedAttempt = { error, attempt in
                failures.withLock { $0.append((error, attempt)) }
                if attempt == 2 { restart.withLock { $0 = Task { try await Server.start(port: port) } } }
            }
            var droppedAt: ContinuousClock.Instant?
            var gaps: [Duration] = []
            var failuresBefore: [Int] = []
            var current = first
            for try await connection in AsyncWebSocketClient.connections(to: "ws://127.0.0.1:\(port)/ws", reconnect: policy) {
                failuresBefore.append(failures.withLock { $0.count })
                if let droppedAt { gaps.append(clock.now - droppedAt) }
                if let restarted = restart.withLock({ $0 }) { current = try await restarted.value }
                restart.withLock { $0 = nil }
                try await connection.send(text: "hello \(failuresBefore.count)")
                var messages = connection.messages.makeAsyncIterator()
                #expect(try await messages.next() == .text("hello \(failuresBefore.count)"))
                if failuresBefore.count == 3 {
                    // This end's close ends the sequence.
                    try await connection.close()
                    break
                }
                // The server goes away (1001); the client's attempts are refused.
                try await current.stop()
                while try await messages.next() != nil {}
                #expect(connection.closeCode == .goingAway)
                droppedAt = clock.now
            }
            print("reconnect gaps: \(gaps), failed attempts before each connection: \(failuresBefore)")
            #expect(failuresBefore.count == 3 && gaps.count == 2)
            for gap in gaps { #expect(gap >= .milliseconds(340), "\(gap)") }
            let refused = failures.withLock { $0 }
            #expect(failuresBefore[0] == 0 && failuresBefore[1] >= 2 && failuresBefore[2] - failuresBefore[1] >= 2)
            for (error, _) in refused {
                #expect(error == .connectionRefused(host: "127.0.0.1", port: port))
            }
            // Numbered from 1 after each drop.
            #expect(refused.map(\.1).prefix(2) == [1, 2] && refused[failuresBefore[1]].1 == 1)
            try await current.stop()
        }

        @Test("a server's normal closure is final; a transient one is not, and a 404 on the way back is thrown")
        func finalEnds() async throws {
            // The server closes every connection with 1000 after one message.
            let polite = try await Server.start { connection in
                for try await message in connection.messages {
                    try await connection.send(message)
                    return
                }
            }
            var opened = 0
            for try await connection in AsyncWebSocketClient.connections(to: "ws://127.0.0.1:\(polite.port)/ws",
                                                                          reconnect: Self.quick) {
                opened += 1
                try await connection.send(text: "once")
                for try await _ in connection.messages {}
                #expect(connection.closeCode == .normalClosure)
            }
            #expect(opened == 1)
            // After a 1011 the client comes back, and finds /ws gone: 404 is final.
            let failing = try await Server.start { connection in
                for try await _ in connection.messages { throw Broken() }
            }
            let port = failing.port
            var restarted: Task<Server, Error>?
            opened = 0
            let thrown = await #expect(throws: WebSocketClientError.self) {
                for try await connection in AsyncWebSocketClient.connections(to: "ws://127.0.0.1:\(port)/ws",
                                                                              reconnect: Self.quick) {
                    opened += 1
                    try await connection.send(text: "fail")
                    for try await _ in connection.messages {}
                    #expect(connection.closeCode == .internalError)
                    try await failing.stop()
                    restarted = Task { try await Server.start(port: port, path: "/elsewhere") }
                    _ = try await restarted?.value
                }
            }
            guard case .handshakeRejected(let status, _)? = thrown else {
                Issue.record("not a refused handshake: \(String(describing: thrown))")
                return
            }
            #expect(status == 404 && opened == 1)
            try await restarted?.value.stop()
            try await polite.stop()
        }

        @Test("a first connect is retried only if asked, up to maxAttempts; a body done with an open connection ends it")
        func firstConnectAndLimits() async throws {
            // A port nothing listens on: bound, then closed.
            let closed = try await Server.start()
            try await closed.stop()
            let url = "ws://127.0.0.1:\(closed.port)/ws"
            let clock = ContinuousClock()
            var started = clock.now
            await #expect(throws: WebSocketClientError.connectionRefused(host: "127.0.0.1", port: closed.port)) {
                for try await _ in AsyncWebSocketClient.connections(to: url, reconnect: Self.quick) {}
            }
            #expect(clock.now - started < .milliseconds(100))
            var retrying = Self.quick
            retrying.retriesFirstConnect = true
            retrying.maxAttempts = 3
            started = clock.now
            await #expect(throws: WebSocketClientError.connectionRefused(host: "127.0.0.1", port: closed.port)) {
                for try await _ in AsyncWebSocketClient.connections(to: url, reconnect: retrying) {}
            }
            // Three attempts: at once, after 100 ms, after 200 more.
            #expect(clock.now - started >= .milliseconds(300))
            // Values out of range are a typed error at the first step, never
            // a trap (a wait that doubling could overflow among them).
            let refused: [(ReconnectPolicy, String)] = [
                (ReconnectPolicy(jitter: 2), "jitter must be in 0...1"),
                (ReconnectPolicy(backoff: .zero), "backoff must be positive"),
                (ReconnectPolicy(backoff: .seconds(Int64.max / 2), maxDelay: .seconds(Int64.max)),
                 "delays must be from 0 to 24 hours"),
            ]
            for (bad, problem) in refused {
                await #expect(throws: AsyncWebSocketError.invalidOption(problem)) {
                    for try await _ in AsyncWebSocketClient.connections(to: url, reconnect: bad) {}
                }
            }
            // The body leaves its connection open: the sequence closes it (1000) and ends.
            let server = try await Server.start()
            var kept: [AsyncWebSocketConnection] = []
            for try await connection in AsyncWebSocketClient.connections(to: "ws://127.0.0.1:\(server.port)/ws") {
                kept.append(connection)
            }
            #expect(kept.count == 1 && kept[0].closeCode == .normalClosure)
            try await server.stop()
        }

        @Test("the waits: the first, then doubling from the backoff up to the cap, each within its jitter")
        func delays() {
            let policy = ReconnectPolicy(firstDelay: .zero, backoff: .seconds(1), maxDelay: .seconds(30), jitter: 0.2)
            let middle = (1...8).map { policy.delay(beforeAttempt: $0, random: 0.5) }
            #expect(middle == [.zero, .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(30), .seconds(30)])
            #expect(policy.delay(beforeAttempt: 1000, random: 0.5) == .seconds(30))
            func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
            #expect(abs(seconds(policy.delay(beforeAttempt: 3, random: 0)) - 1.6) < 1e-9)
            #expect(seconds(policy.delay(beforeAttempt: 3, random: 0.999_999)) < 2.4)
            #expect(ReconnectPolicy.isTransient(CloseCode.goingAway) && ReconnectPolicy.isTransient(CloseCode(1012)))
            #expect(!ReconnectPolicy.isTransient(CloseCode.normalClosure) && !ReconnectPolicy.isTransient(CloseCode(4000)))
            #expect(ReconnectPolicy.isTransient(WebSocketClientError.handshakeRejected(status: 503, body: "")))
            #expect(!ReconnectPolicy.isTransient(WebSocketClientError.handshakeRejected(status: 403, body: "")))
        }
    }
}
