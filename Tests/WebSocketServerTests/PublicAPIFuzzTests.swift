import Foundation
import Logging
import Testing
import UVKit
import WebSocketClient
import WebSocketCore
import WebSocketServer
#if canImport(Glibc)
import Glibc
#endif

/// SplitMix64: a sequence is reproduced from its seed alone.
final class FuzzRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    /// True one time in `n`.
    func oneIn(_ n: Int) -> Bool { below(n) == 0 }
    func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// One fuzz sequence: a server and clients on one loop that this thread
/// drives, a loop of a client's own now and then, and random public calls
/// made from this thread and from inside every kind of handler callback:
/// sends of every form, pings, closes with any code, aborts, shutdowns,
/// broadcasts, `loop.stop()`, connects, and releases of clients and of the
/// server, including calls on connections that have closed.
final class FuzzWorld {
    let random: FuzzRandom
    let loop: EventLoop
    var server: WebSocketServer<FuzzHandler>?
    var port = 0
    var clients: [WebSocketClient<FuzzHandler>] = []
    /// Every connection seen, open or not: calls after close are part of it.
    var connections: [WebSocketConnection<FuzzHandler>] = []
    var events = 0
    var opened = 0
    /// The sequence is over: callbacks that still run act no more.
    var windingDown = false
    private static let codes: [UInt16] = [0, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012,
                                          1015, 1016, 2999, 3000, 4999, 5000, 65535]

    init(seed: UInt64) throws {
        random = FuzzRandom(seed: seed)
        loop = try EventLoop()
    }

    func logger() -> Logger {
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        return logger
    }

    func serverOptions() -> WebSocketOptions {
        var options = WebSocketOptions()
        options.receiveBufferSize = random.pick([256, 4096, 65536])
        options.maxBackpressure = random.pick([1, 1024, 1 << 20])
        options.maxMessageSize = random.pick([16, 1 << 16, 1 << 24])
        options.closeTimeout = .milliseconds(random.pick([0, 20, 100]))
        options.handshakeTimeout = .milliseconds(random.pick([50, 500]))
        options.keepAliveInterval = .milliseconds(random.pick([0, 30, 1000]))
        options.keepAliveTimeout = .milliseconds(random.pick([0, 30]))
        if random.oneIn(3) { options.compression = .init() }
        return options
    }

    func clientOptions() -> WebSocketClientOptions {
        var options = WebSocketClientOptions()
        options.receiveBufferSize = random.pick([256, 4096, 65536, 1 << 18])
        options.maxBackpressure = random.pick([1, 1024, 1 << 20])
        options.closeTimeout = .milliseconds(random.pick([0, 20, 100]))
        options.handshakeTimeout = .milliseconds(random.pick([50, 500]))
        options.keepAliveInterval = .milliseconds(random.pick([0, 30]))
        options.keepAliveTimeout = .milliseconds(random.pick([0, 30]))
        if random.oneIn(3) { options.compression = .forClient }
        return options
    }

    func startServer() throws {
        let server = try WebSocketServer(options: serverOptions(), handler: FuzzHandler(self), loop: loop, logger: logger())
        server.route(webSocket: "/ws")
        port = try server.listen(port: 0)
        self.server = server
    }

    func connect(ownLoop: Bool) {
        guard port > 0 else { return }
        let client = try? WebSocketClient(handler: FuzzHandler(self), options: clientOptions(),
                                          loop: ownLoop ? nil : loop, logger: logger())
        guard let client else { return }
        let count = 1 + random.below(3)
        for _ in 0..<count {
            let target = random.oneIn(8) ? "ws://localhost:\(port)/ws" : "ws://127.0.0.1:\(port)/\(random.oneIn(6) ? "nope" : "ws")"
            client.connect(to: target) { [weak self] result in
                guard let self, case .success(let connection) = result else { return }
                if random.oneIn(3) { act(on: connection, inside: "completion") }
            }
        }
        clients.append(client)
    }

    /// Lets the loops run a few turns: the shared one, and each client's own.
    func turn() {
        for _ in 0..<(1 + random.below(4)) {
            loop.runNoWait()
            for client in clients where client.loop !== loop { client.loop.runNoWait() }
        }
    }

    func payload() -> [UInt8] {
        let size = random.pick([0, 1, 16, 125, 126, 1000, 70_000])
        return (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    /// One random public call; `connection` is the one a callback is about,
    /// if any.
    func act(on connection: WebSocketConnection<FuzzHandler>?, inside: String) {
        // Winding down, callbacks only let things end: a handler that made a
        // new client then (seed 2677: a `didClose` that connected again) would
        // leave one holding the loop's context after the world let go of the rest.
        if windingDown { return }
        events += 1
        let target = connection ?? (connections.isEmpty ? nil : random.pick(connections))
        switch random.below(24) {
        case 23:
            if random.oneIn(2) { target?.pauseReading() } else { target?.resumeReading() }
        case 20:
            target?.subscribe("t\(random.below(3))")
        case 21:
            target?.unsubscribe("t\(random.below(3))")
        case 22:
            let bytes = payload()
            _ = bytes.withUnsafeBytes { server?.publish($0, type: .binary, to: "t\(random.below(3))") }
        case 0, 1, 2:
            target?.send(text: String(repeating: "é", count: random.pick([0, 3, 70])))
        case 3, 4:
            let bytes = payload()
            _ = bytes.withUnsafeBytes { target?.send($0, type: random.oneIn(2) ? .binary : .text, isFinal: random.oneIn(3)) }
        case 5:
            let bytes = payload()
            _ = bytes.withUnsafeBytes { target?.send($0, type: .binary, isFinal: true, compress: random.oneIn(2)) }
        case 6:
            target?.ping([UInt8](repeating: 1, count: random.pick([0, 125, 126])))
        case 7, 8:
            target?.close(code: CloseCode(random.pick(FuzzWorld.codes)), reason: String(repeating: "ü", count: random.pick([0, 61, 70])))
        case 9:
            target?.abort()
        case 10:
            server?.shutdown(drainTimeout: .milliseconds(random.pick([0, 20])))
        case 11:
            let bytes = payload()
            _ = bytes.withUnsafeBytes { server?.broadcast($0, type: .binary) }
        case 12:
            if !clients.isEmpty { clients.remove(at: random.below(clients.count)) }
        case 13:
            connect(ownLoop: random.oneIn(4))
        case 14:
            if random.oneIn(4) { loop.stop() }
        case 15:
            if random.oneIn(6) { server = nil }
        case 16:
            if let client = clients.isEmpty ? nil : random.pick(clients), client.loop === loop || inside == "outside" {
                client.shutdown(code: CloseCode(random.pick(FuzzWorld.codes)))
            }
        case 17:
            server?.requestShutdown(drainTimeout: .milliseconds(random.pick([0, 20])))
        case 18:
            if let target {
                _ = (target.isOpen, target.bufferedAmount, target.roundTripTime, target.usesCompression, target.id,
                     target.isReadingPaused)
            }
        default:
            server?.forEachOpenConnection { $0.send(text: "all") }
        }
    }

    /// The whole sequence; throws if the loops do not wind down in time.
    func run(steps: Int) throws {
        try startServer()
        connect(ownLoop: random.oneIn(4))
        for _ in 0..<steps {
            turn()
            act(on: nil, inside: "outside")
        }
        // A paused connection keeps its loop running until it resumes or
        // closes (it would not see its peer leave): resume them, as an
        // application letting go does. Then release in random order, and
        // every loop must close.
        windingDown = true
        for connection in connections { connection.resumeReading() }
        while !clients.isEmpty { clients.remove(at: random.below(clients.count)) }
        if random.oneIn(2) { server?.shutdown(drainTimeout: .zero) }
        server = nil
        connections.removeAll()
        let deadline = Date().addingTimeInterval(5)
        while loop.runNoWait() {
            if Date() > deadline { throw TestError("the loop did not wind down") }
            usleep(100)
        }
        try closeOrExplain(loop, "the loop")
    }
}

/// Closes `loop`, or throws what kept it open: its handles and how many
/// users still hold its runtime context (a leak's first clue).
func closeOrExplain(_ loop: EventLoop, _ what: String) throws {
    do { try loop.close() } catch {
        let users = (loop.runtimeContext as? LoopContext)?.userCount
        throw TestError("closing \(what): \(error); open: \(loop.openHandles()); context users: \(users.map(String.init) ?? "none")")
    }
}

/// Makes a random call from every callback, now and then.
final class FuzzHandler: WebSocketHandler {
    weak var world: FuzzWorld?
    init(_ world: FuzzWorld) { self.world = world }

    func didOpen(_ connection: WebSocketConnection<FuzzHandler>) {
        guard let world else { return }
        world.connections.append(connection)
        world.opened += 1
        if world.random.oneIn(3) { world.act(on: connection, inside: "didOpen") }
    }

    func didReceive(_ connection: WebSocketConnection<FuzzHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        guard let world else { return }
        _ = connection.wholeMessage(chunk, isFinal: isFinal)
        if world.random.oneIn(2) { connection.send(chunk, type: type, isFinal: isFinal) }
        if world.random.oneIn(4) { world.act(on: connection, inside: "didReceive") }
    }

    func didReceivePing(_ connection: WebSocketConnection<FuzzHandler>, payload: UnsafeRawBufferPointer) {
        if let world, world.random.oneIn(4) { world.act(on: connection, inside: "didReceivePing") }
    }

    func didDrain(_ connection: WebSocketConnection<FuzzHandler>) {
        if let world, world.random.oneIn(2) { world.act(on: connection, inside: "didDrain") }
    }

    func didClose(_ connection: WebSocketConnection<FuzzHandler>, code: CloseCode, reason: String) {
        if let world, world.random.oneIn(2) { world.act(on: connection, inside: "didClose") }
    }
}

/// Sequences with a group of two loops on threads of their own: the calls
/// other threads may make (send, close, broadcast, figures, shutdown) from
/// this thread and from the loops' handlers, then a release.
func fuzzGroup(seed: UInt64) throws {
    let random = FuzzRandom(seed: seed)
    var logger = Logger(label: "fuzz")
    logger.logLevel = .critical
    let ids = Lock<[ConnectionID]>([])
    let group = try WebSocketServerGroup(loops: 2, distribution: random.oneIn(2) ? .reusePort : .roundRobin,
                                         logger: logger) { _ in GroupFuzzHandler(ids: ids) }
    group.route(webSocket: "/ws")
    let port = try group.listen(port: 0)
    let running = Thread { try? group.run() }
    running.start()
    let loop = try EventLoop()
    let client = try WebSocketClient(handler: RecordingClient(), loop: loop, logger: logger)
    for _ in 0..<(1 + random.below(4)) { client.connect(to: "ws://127.0.0.1:\(port)/ws") { _ in } }
    for _ in 0..<20 {
        for _ in 0..<3 { loop.runNoWait() }
        let id = ids.withLock { $0.isEmpty ? nil : $0[random.below($0.count)] }
        switch random.below(6) {
        case 0: if let id { group.send(text: "to one", to: id) }
        case 1: if let id { group.close(id, code: CloseCode(UInt16(truncatingIfNeeded: random.next()))) }
        case 2: if random.oneIn(2) { group.broadcast(text: "to all") } else { group.publish(text: "to a topic", to: "t") }
        case 3: _ = group.metrics()
        case 4: group.collectMetrics { _, _ in }
        default: if random.oneIn(5) { group.requestShutdown(drainTimeout: .milliseconds(random.pick([0, 20]))) }
        }
        usleep(200)
    }
    group.requestShutdown(drainTimeout: .zero)
    client.shutdown()
    let deadline = Date().addingTimeInterval(5)
    while !running.isFinished || loop.runNoWait() {
        if Date() > deadline { throw TestError("the group did not stop") }
        loop.runNoWait()
        usleep(200)
    }
    try closeOrExplain(loop, "the client's loop")
}

final class GroupFuzzHandler: WebSocketHandler, @unchecked Sendable {
    let ids: Lock<[ConnectionID]>
    init(ids: Lock<[ConnectionID]>) { self.ids = ids }

    func didOpen(_ connection: WebSocketConnection<GroupFuzzHandler>) {
        let id = connection.id
        ids.withLock { $0.append(id) }
    }

    func didReceive(_ connection: WebSocketConnection<GroupFuzzHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        // From a loop's handler: the group's calls that cross threads.
        guard let group = connection.server?.group else { return }
        _ = group.metrics()
        group.broadcast(chunk, type: .binary)
    }
}

/// Where the fuzzer's child process writes its progress: the parent test
/// reads it back whatever way the child ended (a crash leaves the seed of
/// the sequence that crashed last).
func fuzzProgressFile(parent: Int32) -> String {
    NSTemporaryDirectory() + "uvws-fuzz-\(parent).log"
}

@Suite("A public-API fuzzer: random call sequences against real loops")
struct PublicAPIFuzzTests {
    /// `FUZZ_SEQUENCES` (default 500; `make asan` runs 3,000) sequences from
    /// seed `FUZZ_SEED` (default 1) on; every 20th is a group's.
    @Test("random sequences of public calls end without a crash, a leak or a hang")
    func randomSequences() async {
        let progress = fuzzProgressFile(parent: getpid())
        defer { try? FileManager.default.removeItem(atPath: progress) }
        await #expect(processExitsWith: .success) {
            let environment = ProcessInfo.processInfo.environment
            let count = environment["FUZZ_SEQUENCES"].flatMap(Int.init) ?? 500
            let first = environment["FUZZ_SEED"].flatMap(UInt64.init) ?? 1
            guard let log = fopen(fuzzProgressFile(parent: getppid()), "w") else { exit(2) }
            func note(_ line: String) {
                fputs(line + "\n", log)
                fflush(log)
            }
            // A sequence that does not end within 20 s is a hang: the
            // watchdog names its seed and ends the process.
            let current = Lock<(UInt64, Date)>((first, Date()))
            let shared = LoopBound(log)
            let watchdog = Thread {
                let log = shared.value
                while true {
                    sleep(1)
                    let (seed, started) = current.withLock { $0 }
                    if Date().timeIntervalSince(started) > 20 {
                        fputs("hang at seed \(seed)\n", log)
                        fflush(log)
                        abort()
                    }
                }
            }
            watchdog.start()
            var calls = 0, opened = 0
            for seed in first..<(first + UInt64(count)) {
                current.withLock { $0 = (seed, Date()) }
                // Written before the sequence, so that a crash leaves it last.
                note("seed \(seed)")
                do {
                    if seed % 20 == 0 {
                        try fuzzGroup(seed: seed)
                    } else {
                        let world = try FuzzWorld(seed: seed)
                        try world.run(steps: 40)
                        calls += world.events
                        opened += world.opened
                    }
                } catch {
                    note("failed at seed \(seed): \(error)")
                    exit(1)
                }
            }
            note("done \(count) sequences from seed \(first): \(calls) calls, \(opened) WebSocket connections opened")
        }
        let lines = ((try? String(contentsOfFile: progress, encoding: .utf8)) ?? "").split(separator: "\n")
        if let summary = lines.last(where: { $0.hasPrefix("done") }) {
            print(summary)
        } else {
            let last = lines.last { $0.contains("seed") }
            Issue.record("the fuzzer stopped at \(last ?? "?"); rerun with FUZZ_SEED=<seed> FUZZ_SEQUENCES=1")
        }
    }
}
