import Foundation
import Logging
import ServiceLifecycle
import Testing
import WebSocketCore
import WebSocketClient
import WebSocketServer

/// The server group as a swift-service-lifecycle `Service`, run by a real
/// `ServiceGroup` beside other services, with real clients on 127.0.0.1.
@Suite("A server group in a ServiceGroup", .serialized)
struct ServiceLifecycleTests {
    /// Blocking test clients, handed between the test's threads one at a time.
    final class Clients: @unchecked Sendable {
        let all: [TestClient]
        init(_ all: [TestClient]) { self.all = all }
    }

    struct Failure: Error, Equatable {}

    /// A service that fails once the clients are connected.
    struct FailingService: Service {
        let failWhen: @Sendable () async -> Void
        func run() async throws {
            await failWhen()
            throw Failure()
        }
    }

    /// A service that runs until the group's graceful shutdown.
    struct IdleService: Service {
        func run() async throws {
            try await ServiceLifecycle.gracefulShutdown()
        }
    }

    func makeGroup(loops: Int) throws -> (WebSocketServerGroup<EchoHandler>, Int) {
        let group = try WebSocketServerGroup(loops: loops) { _ in EchoHandler() }
        group.route(webSocket: "/ws")
        let port = try group.listen(host: "127.0.0.1", port: 0)
        return (group, port)
    }

    /// Runs blocking client code on a thread of its own, not on one of the
    /// concurrency pool's: with two cores the pool has two threads, and a
    /// blocked one could keep the service group's own tasks from running.
    func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// Connects `count` clients and checks each echoes.
    func connect(_ count: Int, port: Int) throws -> [TestClient] {
        var clients: [TestClient] = []
        for i in 0..<count {
            // Reads wait up to a minute: the shutdown these tests await runs in
            // the service group's tasks, which in a full `make asan` run can
            // wait longer than the default 10 s for a thread of the pool.
            let client = try TestClient(port: port, timeout: 60)
            try client.sendText("hi \(i)")
            #expect(try client.nextMessage() == .message(.text, Array("hi \(i)".utf8)))
            clients.append(client)
        }
        return clients
    }

    @Test("the ServiceGroup's graceful shutdown is ours: 1001 to every peer, then run() returns")
    func shutdownFromTheGroup() async throws {
        let (server, port) = try makeGroup(loops: 2)
        server.drainTimeout = .seconds(60)
        let services = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: server), .init(service: IdleService())], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            // Once the loops run (the service group's tasks may wait for a
            // pool thread while other suites block theirs), without a timeout.
            _ = await server.metrics()
            let clients = try await offPool { Clients(try connect(8, port: port)) }
            let clock = ContinuousClock()
            let start = clock.now
            await services.triggerGracefulShutdown()
            let answers = try await offPool {
                try clients.all.map { client in
                    let event = try client.nextMessage()
                    try client.sendClose(1001)
                    client.shutdownWrite()
                    return event
                }
            }
            #expect(answers == Array(repeating: .close(1001, "server shutting down"), count: 8))
            try await tasks.waitForAll()
            // Drained, not timed out: every peer answered.
            #expect(clock.now - start < .seconds(30))
        }
        let totals = await server.metrics().total
        #expect(totals.webSocketsOpened == 8)
        #expect(totals.closesByCode[1001] == 8)
    }

    @Test("another service failing shuts the server down too: 1001 to every peer, and the group throws its error")
    func siblingFailure() async throws {
        let (server, port) = try makeGroup(loops: 2)
        let connected = AsyncStream<Void>.makeStream()
        let services = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: server),
                       .init(service: FailingService { for await _ in connected.stream { return } })],
            logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                await #expect(throws: Failure.self) { try await services.run() }
            }
            // Once the loops run (the service group's tasks may wait for a
            // pool thread while other suites block theirs), without a timeout.
            _ = await server.metrics()
            let clients = try await offPool { Clients(try connect(6, port: port)) }
            connected.continuation.yield()
            let answers = try await offPool { try clients.all.map { try $0.nextMessage() } }
            #expect(answers == Array(repeating: .close(1001, "server shutting down"), count: 6))
            try await tasks.waitForAll()
        }
        // The loops have stopped: a new connection is refused.
        let refused = try await offPool { (try? TestClient(port: port, timeout: 1)) == nil }
        #expect(refused)
    }

    /// A client handler that records how its connections ended.
    final class CloseRecorder: WebSocketHandler, @unchecked Sendable {
        // Loop thread only while the client runs; read after it returned.
        var opened = 0
        var codes: [UInt16] = []
        func didOpen(_ connection: WebSocketConnection<CloseRecorder>) { opened += 1 }
        func didReceive(_ connection: WebSocketConnection<CloseRecorder>, chunk: UnsafeRawBufferPointer,
                        type: MessageType, isFinal: Bool) {}
        func didClose(_ connection: WebSocketConnection<CloseRecorder>, code: CloseCode, reason: String) {
            codes.append(code.rawValue)
        }
    }

    @Test("a single-loop server and a client with its own loop run as services: the graceful shutdown ends both")
    func serverAndClientServices() async throws {
        let server = try WebSocketServer(handler: EchoHandler())
        server.route(webSocket: "/ws")
        let port = try server.listen(host: "127.0.0.1", port: 0)
        let recorder = CloseRecorder()
        let client = try WebSocketClient(handler: recorder)
        for _ in 0..<3 { client.connect(to: "ws://127.0.0.1:\(port)/ws") { _ in } }
        let services = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: server.service), .init(service: client.service)], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            // Until the three are open (the server counts them), at most 20 s.
            for _ in 0..<400 {
                if await serverOpened(server) == 3 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            await services.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // The server's 1001 reached every client connection before both returned.
        #expect(recorder.opened == 3)
        #expect(recorder.codes == [1001, 1001, 1001])
        await #expect(throws: WebSocketServerError.self) { try await server.service.run() }
    }

    /// Open WebSockets on a running server, read on its loop.
    func serverOpened(_ server: WebSocketServer<EchoHandler>) async -> Int {
        await withCheckedContinuation { continuation in
            let bound = LoopBound(server)
            if !server.loop.execute({ continuation.resume(returning: bound.value.metrics.webSocketsOpened) }) {
                continuation.resume(returning: -1)
            }
        }
    }

    @Test("a group runs once: the async run() of a group that ran throws notRunnable")
    func runsOnce() async throws {
        let (server, _) = try makeGroup(loops: 1)
        let services = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: server)], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            try await Task.sleep(for: .milliseconds(100))
            await services.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await #expect(throws: WebSocketServerError.self) { try await server.run() }
    }
}
