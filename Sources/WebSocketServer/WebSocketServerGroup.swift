import Logging
import Synchronization
import UVKit
import WebSocketCore
import WebSocketRuntime
#if canImport(Glibc)
import Glibc
#endif

/// One WebSocket server on several loops: N libuv loops on N threads, each a
/// `WebSocketServer` with its own context (receive ring, cork, timing wheel),
/// its own handler and its own connections, accepting on one address.
///
/// Handlers stay single-threaded: each loop has its own handler instance
/// (from the factory), or shares one the application declares `Sendable`.
/// A connection lives on the loop that accepted it, for its whole life.
///
/// From any thread (a foreign thread, a Swift concurrency task, another
/// loop's handler), the group sends to a connection by its `ConnectionID`,
/// closes one, broadcasts to all, gathers metrics and shuts down. These cross
/// through each loop's inbox: a record copied into a buffer under a lock, one
/// wake-up per batch, no closure and no allocation per message.
///
/// Set it up (routes, files, `listen`, signals) on one thread, then `run()`:
/// loop 0 runs on the calling thread, the others on threads of their own.
///
/// `Sendable` unchecked: what other threads touch is behind a lock (the
/// figures, the drain timeout, the run flag), an atomic (the loop threads'
/// marks) or a loop's inbox; `servers` is read from other threads only
/// before `run()`, and after it each server is its own loop's.
public final class WebSocketServerGroup<Handler: WebSocketHandler>: @unchecked Sendable {
    /// The most loops a group runs (a loop is a thread).
    public static var maxLoops: Int { groupMaxLoops }

    /// How many loops (threads) the group runs.
    public let loopCount: Int
    /// How accepted connections are spread over the loops.
    public let distribution: ConnectionDistribution
    /// The loops' servers, in order. Set-up time only: once `run()` starts,
    /// each belongs to its loop's thread (a handler reaches its own through
    /// `connection.server`).
    public let servers: [WebSocketServer<Handler>]
    let inboxes: [LoopInbox<LoopCommand>]
    /// Which thread runs each loop, to tell a loop's own calls from foreign ones.
    private let loopThreads: [ThreadMark]
    private let stopped = Lock<[WebSocketMetrics?]>([])
    /// Each loop's figures as it last published them, for `metrics()` on a
    /// loop thread.
    let published: [Lock<WebSocketMetrics>]
    /// Carries publications to and from other servers; driven on loop 0.
    var backplane: TopicBackplane?
    /// Loop 0 only: how many loops hold a subscriber of each topic.
    var loopsInterested: [String: Int] = [:]
    private let started = Lock(false)
    private let serviceDrainTimeout = Lock(Duration.seconds(5))

    /// How long a graceful shutdown started by a `ServiceGroup` waits for the
    /// closing handshakes (the async `run()`); 5 seconds unless set.
    public var drainTimeout: Duration {
        get { serviceDrainTimeout.withLock { $0 } }
        set { serviceDrainTimeout.withLock { $0 = newValue } }
    }

    /// - Parameters:
    ///   - loops: how many loops (and threads); at least 1.
    ///   - options: every loop's, validated here.
    ///   - distribution: how accepted connections reach the loops.
    ///   - inboxLimit: bytes waiting in one loop's inbox past which sends from
    ///     other threads are refused (`send` returns false).
    ///   - logger: every loop's, with the loop's index in its metadata.
    ///   - makeHandler: called once per loop, with its index, on this thread.
    public init(loops: Int, options: WebSocketOptions = WebSocketOptions(), distribution: ConnectionDistribution = .reusePort,
                inboxLimit: Int = 64 << 20, logger: Logger = Logger(label: "UVWebSocket"),
                makeHandler: (Int) throws -> Handler) throws {
        guard loops >= 1 && loops <= groupMaxLoops else {
            throw WebSocketServerError.invalidOption("loops must be from 1 to \(groupMaxLoops), got \(loops)")
        }
        guard inboxLimit > 0 else { throw WebSocketServerError.invalidOption("inboxLimit must be positive, got \(inboxLimit)") }
        loopCount = loops
        self.distribution = distribution
        var servers: [WebSocketServer<Handler>] = []
        for index in 0..<loops {
            servers.append(try WebSocketServer(options: options, handler: try makeHandler(index), logger: logger))
        }
        self.servers = servers
        loopThreads = (0..<loops).map { _ in ThreadMark() }
        stopped.withLock { $0 = Array(repeating: nil, count: loops) }
        let counter = ConnectionCounter()
        inboxes = servers.enumerated().map { index, server in
            server.becomeLoop(index, of: loops, inboxLimit: inboxLimit, counter: counter)
        }
        published = (0..<loops).map { _ in Lock(WebSocketMetrics()) }
        for index in 0..<loops {
            servers[index].group = self
            if loops > 1 { servers[index].publishMetrics(to: published[index]) }
        }
    }

    /// One handler for every loop: it must be safe to call from several
    /// threads at once, which `Sendable` declares.
    public convenience init(loops: Int, options: WebSocketOptions = WebSocketOptions(),
                            distribution: ConnectionDistribution = .reusePort, inboxLimit: Int = 64 << 20,
                            logger: Logger = Logger(label: "UVWebSocket"), sharedHandler: Handler) throws
    where Handler: Sendable {
        try self.init(loops: loops, options: options, distribution: distribution, inboxLimit: inboxLimit,
                      logger: logger) { _ in sharedHandler }
    }

    // MARK: Set-up (before `run`)

    /// Accepts WebSocket requests on `path` on every loop (a plain HTTP request there gets 400).
    public func route(webSocket path: String) {
        for server in servers { server.route(webSocket: path) }
    }

    /// A route with an upgrade hook (`WebSocketServer.route(webSocket:upgrade:)`),
    /// called on the loop that took the connection, so from several threads.
    public func route(webSocket path: String,
                      upgrade: @escaping @Sendable (WebSocketUpgradeRequest) -> UpgradeDecision<Handler.ConnectionData>) {
        for server in servers { server.route(webSocket: path, upgrade: upgrade) }
    }

    /// Serves files under `root` on every loop, each loop with its own
    /// memory cache (`WebSocketServer.serveFiles(from:options:)`).
    public func serveFiles(from root: String, options: StaticFileOptions = StaticFileOptions()) throws {
        for server in servers { try server.serveFiles(from: root, options: options) }
    }

    /// Listens on `host` and `port` (0: a free one) on every loop, with
    /// `SO_REUSEPORT` when there are several; with `.roundRobin`, on loop 0
    /// only. Returns the port. A failure leaves no loop listening.
    @discardableResult
    public func listen(host: String = "127.0.0.1", port: Int, backlog: Int32 = 1024) throws -> Int {
        let listeners = distribution == .roundRobin ? Array(servers.prefix(1)) : servers
        var bound = port
        for (index, server) in listeners.enumerated() {
            do {
                bound = try server.listen(host: host, port: bound, reusePort: listeners.count > 1, backlog: backlog)
            } catch {
                for earlier in listeners.prefix(index) { earlier.stopListening() }
                throw error
            }
        }
        return bound
    }

    /// SIGINT and SIGTERM shut every loop down gracefully (watched on loop 0).
    public func shutdownOnSignals(_ signals: [Int32] = [SIGINT, SIGTERM], drainTimeout: Duration = .seconds(5)) throws {
        try servers[0].shutdownOnSignals(signals, drainTimeout: drainTimeout)
    }

    /// Reloads every loop's TLS certificates (`WebSocketServer.reloadCertificates`). Any thread.
    public func reloadCertificates() throws {
        for server in servers { try server.reloadCertificates() }
    }

    /// Reloads the certificates on SIGHUP (watched on loop 0).
    public func reloadCertificatesOnHangUp() throws {
        try servers[0].reloadCertificatesOnHangUp()
    }

    // MARK: Running

    /// Runs every loop until shutdown has closed its connections and handles:
    /// loop 0 on this thread, the others on threads of their own, joined
    /// before this returns. Throws the first loop's failure to close cleanly
    /// (a handle left open).
    ///
    /// A second call throws `WebSocketServerError.notRunnable`.
    public func run() throws {
        let first = started.withLock { started in
            defer { started = true }
            return !started
        }
        guard first else {
            throw WebSocketServerError.notRunnable("run() was already called; a group runs once")
        }
        // Loops that outnumber the CPUs they may use take turns on a core:
        // as batch threads they wait for each other's time slices instead of
        // preempting each other at every wake-up (docs/architecture.md).
        let crowded = loopCount > 1 && (LoopScheduling.allowedCPUs ?? loopCount) < loopCount
        let callerPolicy = crowded ? LoopScheduling.preferBatches() : nil
        defer { if let callerPolicy { LoopScheduling.restore(callerPolicy) } }
        loopThreads[0].set(LoopThread.currentIdentity)
        let failures = Lock<[Error]>([])
        var threads: [LoopThread] = []
        for index in 1..<loopCount {
            // The server's `run` as a plain function, so that the thread's
            // closure holds no generic type (whose metatype is not `Sendable`).
            let runServer = LoopBound<() throws -> Void>(servers[index].run)
            let mark = loopThreads[index]
            do {
                threads.append(try LoopThread(name: "ws-loop-\(index)") {
                    if crowded { _ = LoopScheduling.preferBatches() }
                    mark.set(LoopThread.currentIdentity)
                    do { try runServer.value() } catch { failures.withLock { $0.append(error) } }
                })
            } catch {
                // The loops started so far stop; this one never runs.
                requestShutdown(drainTimeout: .zero)
                failures.withLock { $0.append(error) }
                break
            }
        }
        startBackplane()
        do { try servers[0].run() } catch { failures.withLock { $0.append(error) } }
        for thread in threads { thread.join() }
        // A loop that never started still holds handles: close them.
        for server in servers.dropFirst(threads.count + 1) { try? server.run() }
        // No thread runs a loop any more: this one may wait for figures
        // (`metrics()`), which the stopped loops give at once.
        for mark in loopThreads { mark.set(0) }
        if let first = failures.withLock({ $0.first }) { throw first }
    }

    /// Which loop the calling thread runs, if any.
    var currentLoop: Int? {
        let me = LoopThread.currentIdentity
        return loopThreads.firstIndex { $0.value == me }
    }

    /// A loop's final figures, as its server stops (its own thread).
    func loopStopped(_ index: Int, metrics: WebSocketMetrics) {
        stopped.withLock { $0[index] = metrics }
    }

    /// The final figures of a loop that has stopped, else nil.
    func finalMetrics(of index: Int) -> WebSocketMetrics? {
        stopped.withLock { $0[index] }
    }
}

/// The most loops a group runs: each is a thread of its own.
let groupMaxLoops = 1024

/// Which thread runs a loop: written once by that thread, read by any.
final class ThreadMark: Sendable {
    private let identity = Atomic<UInt>(0)
    func set(_ value: UInt) { identity.store(value, ordering: .releasing) }
    var value: UInt { identity.load(ordering: .acquiring) }
}
