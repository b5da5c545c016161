import Foundation
import Logging
import Synchronization
import UVKit
import Testing
import WebSocketClient
import WebSocketServer
#if canImport(Glibc)
import Glibc
#endif

@Suite("A server on several loops over 127.0.0.1", .serialized)
struct LoopGroupTests {
    @Test("SO_REUSEPORT spreads 1,000 connections over 2 loops (35-65% each), and the metrics sum them")
    func reusePortSpreads() throws {
        let harness = try GroupHarness(loops: 2) { _ in EchoHandler() }
        defer { harness.stop() }
        let handler = RecordingClient()
        handler.greeting = [7]
        handler.closeAfterEcho = true
        let results = try runClient(handler, urls: Array(repeating: harness.url, count: 1000))
        #expect(results.filter { if case .success = $0 { true } else { false } }.count == 1000)
        #expect(handler.messages.count == 1000)
        let (total, perLoop) = harness.group.metrics()
        #expect(total.webSocketsOpened == 1000)
        #expect(perLoop.count == 2)
        for loop in perLoop {
            #expect((350...650).contains(loop.webSocketsOpened), "loop share \(loop.webSocketsOpened) of 1000")
        }
        #expect(perLoop.map(\.webSocketsOpened).reduce(0, +) == total.webSocketsOpened)
        #expect(total.closesByCode[1000] == 1000)
    }

    @Test("round-robin acceptance hands connections to 3 loops in turn")
    func roundRobinSpreadsEvenly() throws {
        let harness = try GroupHarness(loops: 3, distribution: .roundRobin) { _ in EchoHandler() }
        defer { harness.stop() }
        let handler = RecordingClient()
        handler.greeting = [1, 2, 3]
        handler.closeAfterEcho = true
        _ = try runClient(handler, urls: Array(repeating: harness.url, count: 300))
        #expect(handler.messages.count == 300)
        #expect(handler.messages.allSatisfy { $0.1 == [1, 2, 3] })
        let perLoop = harness.group.metrics().perLoop
        #expect(perLoop.map(\.webSocketsOpened) == [100, 100, 100])
    }

    @Test("metrics from a Swift concurrency task: each loop answers on its own thread, summed")
    func metricsFromATask() async throws {
        let harness = try GroupHarness(loops: 2, distribution: .roundRobin) { _ in EchoHandler() }
        defer { harness.stop() }
        let handler = RecordingClient()
        handler.greeting = [9]
        handler.closeAfterEcho = true
        _ = try runClient(handler, urls: Array(repeating: harness.url, count: 10))
        let (total, perLoop) = await harness.group.metrics()
        #expect(total.messagesReceived == 10 && total.messagesSent == 10)
        #expect(perLoop.map(\.webSocketsOpened) == [5, 5])
    }

    @Test("a broadcast from a handler on one loop reaches every connection of both loops once, in order")
    func broadcastSpansLoops() throws {
        let registry = OpenedRegistry()
        let harness = try GroupHarness(loops: 2) { _ in RegisteringHandler(registry: registry) }
        defer { harness.stop() }
        let connections = 200, messages = 50
        let client = SequenceClient(connections: connections, expected: messages)
        client.onAllOpen = { $0.send(text: "go \(messages)") }
        let runner = try ClientThread(handler: client, url: harness.url, connections: connections)
        #expect(runner.wait())
        #expect(runner.failures.isEmpty)
        #expect(client.finished.count == connections)
        let expected = (0..<messages).map { "\($0)" }
        #expect(client.finished.allSatisfy { $0.messages == expected && $0.code == 1000 })
        // Both loops held connections, so the broadcast crossed between them.
        let loops = Set(registry.ids.withLock { $0.map(\.loop) })
        #expect(loops == [0, 1])
    }

    @Test("sends from 8 foreign threads to 500 connections arrive complete and in per-sender order")
    func foreignThreadSends() throws {
        let registry = OpenedRegistry()
        let harness = try GroupHarness(loops: 2) { _ in RegisteringHandler(registry: registry) }
        defer { harness.stop() }
        let connections = 500, senders = 8, perSender = 20
        let client = SequenceClient(connections: connections, expected: senders * perSender)
        let runner = try ClientThread(handler: client, url: harness.url, connections: connections)
        let ids = try #require(registry.waitFor(connections))
        let group = harness.group
        let refused = Atomic<Int>(0)
        let finished = DispatchGroup()
        for sender in 0..<senders {
            finished.enter()
            Thread {
                for n in 0..<perSender {
                    for id in ids where !group.send(text: "\(sender):\(n)", to: id) {
                        refused.add(1, ordering: .relaxed)
                    }
                }
                finished.leave()
            }.start()
        }
        finished.wait()
        let refusedCount = refused.load(ordering: .relaxed)
        #expect(refusedCount == 0)
        #expect(runner.wait())
        #expect(client.finished.count == connections)
        for connection in client.finished {
            #expect(connection.messages.count == senders * perSender)
            var next = Array(repeating: 0, count: senders)
            for message in connection.messages {
                let parts = message.split(separator: ":").compactMap { Int($0) }
                guard parts.count == 2, parts[0] < senders else {
                    Issue.record("unexpected message \(message)")
                    break
                }
                #expect(parts[1] == next[parts[0]], "sender \(parts[0]) out of order")
                next[parts[0]] = parts[1] + 1
            }
        }
    }

    @Test("a connection closed from a foreign thread gets its closing handshake")
    func foreignClose() throws {
        let registry = OpenedRegistry()
        let harness = try GroupHarness(loops: 2) { _ in RegisteringHandler(registry: registry) }
        defer { harness.stop() }
        let client = RecordingClient()
        let runner = try ClientThread(handler: client, url: harness.url, connections: 1)
        let id = try #require(registry.waitFor(1)?.first)
        let posted = Atomic<Bool>(false)
        let closer = Thread { posted.store(harness.group.close(id, code: CloseCode(4000), reason: "bye from afar"), ordering: .relaxed) }
        closer.start()
        #expect(runner.wait(seconds: 10))
        let wasPosted = posted.load(ordering: .relaxed)
        #expect(wasPosted)
        #expect(client.closes.count == 1)
        #expect(client.closes.first?.0 == 4000 && client.closes.first?.1 == "bye from afar")
        // The server heard the client's answering close frame: a handshake,
        // not a dropped connection (1006).
        let serverSide = registry.closes.withLock { $0 }
        #expect(serverSide.count == 1)
        #expect(serverSide.first?.1 == 4000)
        // An identity whose connection is gone reaches nobody.
        #expect(harness.group.send(text: "late", to: id))
    }

    @Test("maxConnections bounds the whole group, not each loop")
    func connectionLimitSpansLoops() throws {
        var options = WebSocketOptions()
        options.maxConnections = 10
        let registry = OpenedRegistry()
        let harness = try GroupHarness(loops: 2, distribution: .roundRobin, options: options) { _ in
            RegisteringHandler(registry: registry)
        }
        defer { harness.stop() }
        // The limit counts connections still in their handshake too, so the
        // second ten come once the first ten are open.
        let first = try ClientThread(handler: RecordingClient(), url: harness.url, connections: 10)
        #expect(registry.waitFor(10, seconds: 10) != nil)
        let second = try ClientThread(handler: RecordingClient(), url: harness.url, connections: 10)
        #expect(second.wait(seconds: 20))
        #expect(second.failures.count == 10)
        #expect(second.failures.allSatisfy { "\($0)".contains("503") }, "\(second.failures.first.map { "\($0)" } ?? "")")
        for id in registry.ids.withLock({ $0 }) { harness.group.close(id) }
        #expect(first.wait(seconds: 20))
        #expect(first.failures.isEmpty)
        #expect(registry.count == 10)
        // Both loops held some of the ten (round-robin), so one count bounded both.
        #expect(Set(registry.ids.withLock { $0.map(\.loop) }) == [0, 1])
    }

    @Test("a shutdown gets through an inbox full of messages")
    func shutdownPastAFullInbox() throws {
        var logger = Logger(label: "test-group")
        logger.logLevel = .warning
        let group = try WebSocketServerGroup(loops: 2, inboxLimit: 1024, logger: logger) { _ in EchoHandler() }
        group.route(webSocket: "/ws")
        try group.listen(host: "127.0.0.1", port: 0)
        // Before run(), nothing drains: broadcasts fill both inboxes.
        var posted = 0
        while group.broadcast(text: "x") == 2 { posted += 1 }
        #expect(posted > 0 && posted < 1024)
        group.requestShutdown(drainTimeout: .zero)
        try group.run()
        // Once run() has returned, the stopped loops answer with their final
        // figures, on the thread that ran loop 0 too.
        let (total, perLoop) = group.metrics()
        #expect(total.connectionsAccepted == 0 && perLoop.count == 2)
    }

    @Test("SIGTERM with 2 loops and 2,000 connections: every one closed with 1001, every loop closed, run() returns")
    func sigtermClosesEveryLoop() throws {
        raiseOpenFileLimit(to: 8192)
        let registry = OpenedRegistry()
        var logger = Logger(label: "test-group")
        logger.logLevel = .warning
        let group = try WebSocketServerGroup(loops: 2, logger: logger) { _ in RegisteringHandler(registry: registry) }
        group.route(webSocket: "/ws")
        let port = try group.listen(host: "127.0.0.1", port: 0)
        try group.shutdownOnSignals([SIGTERM], drainTimeout: .seconds(10))
        let stopped = DispatchSemaphore(value: 0)
        let failure = Lock<Error?>(nil)
        Thread {
            do { try group.run() } catch { failure.withLock { $0 = error } }
            stopped.signal()
        }.start()
        let client = RecordingClient()
        let runner = try ClientThread(handler: client, url: "ws://127.0.0.1:\(port)/ws", connections: 2000)
        let ids = try #require(registry.waitFor(2000))
        #expect(Set(ids.map(\.loop)) == [0, 1])
        kill(getpid(), SIGTERM)
        #expect(stopped.wait(timeout: .now() + 30) == .success)
        #expect(failure.withLock { $0 } == nil)
        #expect(runner.wait(seconds: 30))
        #expect(client.closes.count == 2000)
        #expect(client.closes.allSatisfy { $0.0 == 1001 && $0.1 == "server shutting down" })
        #expect(registry.closes.withLock { $0.count } == 2000)
    }
}

/// Lifts the soft limit on open files toward `wanted` (one descriptor per
/// connection on each side).
func raiseOpenFileLimit(to wanted: rlim_t) {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if limit.rlim_cur < wanted {
        limit.rlim_cur = min(wanted, limit.rlim_max)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
