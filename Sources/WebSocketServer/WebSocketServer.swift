import Logging
import UVKit
import WebSocketCore
import WebSocketRuntime
#if canImport(Glibc)
import Glibc
#endif

/// A WebSocket server on one libuv loop: the middleware the article describes.
/// Requests to a WebSocket route are upgraded (a plain request there gets 400),
/// every other path falls through to static files, and handlers run on the loop
/// thread.
///
/// It holds the routes, the options and its connection table; what the loop's
/// connections share (receive ring, cork, timing wheel) is the loop's context,
/// which a client on the same loop shares too. Generic over its handler, so
/// every call into it is direct. Create it, add routes, `listen`, then `run()`
/// on the thread that is to own the loop. While the loop runs, only
/// `requestShutdown` and `reloadCertificates` may be called from another
/// thread; the others check the thread and trap with the rule's name.
///
/// Released at any time, it does not crash or hang: its connections are
/// dropped (1006 to the handler) when it owns its loop, which nobody runs
/// after it; on a loop the caller passed in, which goes on, open ones get
/// the closing handshake with 1001 and finish on that loop.
public final class WebSocketServer<Handler: WebSocketHandler> {
    /// The loop the server runs on: its own, or the one passed to `init`.
    public let loop: EventLoop
    /// The options it was made with, validated.
    public let options: WebSocketOptions
    /// The handler every route's connections call (on the loop thread).
    public let handler: Handler
    /// Start, listen address and shutdown at info; at debug, every refused
    /// request with its status and every connection's open and close.
    public var logger: Logger {
        get { endpoint.logger }
        set { endpoint.logger = newValue }
    }
    let endpoint: Endpoint<Handler>

    /// Counters, updated on the loop thread.
    public var metrics: WebSocketMetrics { endpoint.metrics }

    /// The TLS context new connections use, when `options.tls` is set.
    let credentials: TLSCredentials?

    /// WebSocket routes by path, each with its upgrade hook, if any.
    var webSocketRoutes: [String: UpgradeHook<Handler.ConnectionData>?] = [:]
    /// The application's plain HTTP routes (`route(http:respond:)`).
    var httpRoutes: [String: HTTPResponder] = [:]
    var fileResponder: FileResponder<Handler>?
    private var listener: TCPListener?
    var connections = SlotTable<WebSocketConnection<Handler>>()
    /// This loop's topics and their subscribers (by connection slot).
    var topicTable = TopicTable()
    /// The same connections by slot, not counted (each holds itself until its
    /// close callback, and leaves this table first): a publication reaches
    /// each subscriber through it without a retain and a release.
    var unretainedBySlot: [Unmanaged<WebSocketConnection<Handler>>?] = []
    /// Each slot's serial, bumped when a connection takes the slot: with the
    /// slot and the loop, the identity other threads address a connection
    /// by, told apart from the slot's earlier and later holders. Here rather
    /// than in the connection, where 4 more bytes cross a malloc size class
    /// (16 more per connection).
    private(set) var serials: [UInt32] = []

    // In a group of loops (nil and 0 alone).
    /// The group this server is one loop of.
    public internal(set) weak var group: WebSocketServerGroup<Handler>?
    /// Its place in the group: the loop of its connections' identities.
    public var loopIndex: Int { Int(endpoint.loopIndex) }
    /// The door in from other threads; it keeps the loop running until shutdown.
    var inbox: LoopInbox<LoopCommand>?
    var inInboxBatch = false
    /// The group's open connections, for `maxConnections` over every loop.
    private var groupCount: ConnectionCounter?
    /// Round-robin acceptance: where the next connection goes.
    private var nextLoop = 0

    private let ownsLoop: Bool
    private var loopClosed = false
    /// `run()` has been called: a second call throws.
    private var ran = false
    private let serviceDrainTimeout = Lock(Duration.seconds(5))

    /// How long a graceful shutdown started by a `ServiceGroup` waits for the
    /// closing handshakes (the async `run()`); 5 seconds unless set. Any thread.
    public var drainTimeout: Duration {
        get { serviceDrainTimeout.withLock { $0 } }
        set { serviceDrainTimeout.withLock { $0 = newValue } }
    }

    /// Every `options.metricsInterval` (or quarter second), hands the
    /// counters on (`reportMetrics`).
    private var metricsTimer: Timer?
    /// Turns the counters into swift-metrics' (made at the first report, so
    /// that it sees the backend the application bootstrapped by then).
    private var metricsReporter: MetricsReporter?
    /// In a group: where this loop's figures go for `metrics()` called on
    /// another loop's thread, which cannot wait for this one's answer.
    private var publishedMetrics: Lock<WebSocketMetrics>?
    private var signalWatchers: [SignalWatcher] = []
    private var drainTimer: Timer?
    private var shuttingDown = false
    private var finished = false
    private var shutdownCompletion: (() -> Void)?

    /// A server, not yet listening. Throws `WebSocketServerError.invalidOption`
    /// for an option out of range and `.tls` when the certificate files
    /// cannot be read.
    ///
    /// - Parameters:
    ///   - options: validated here (`WebSocketOptions.validate()`).
    ///   - handler: called for every connection's events, on the loop thread.
    ///   - loop: the loop to run on; by default the server makes its own
    ///     and closes it when `run()` returns (or when the server is released
    ///     without running).
    ///   - logger: where start-up, shutdown and, at debug, connection events go.
    public init(options: WebSocketOptions = WebSocketOptions(), handler: Handler, loop: EventLoop? = nil,
                logger: Logger = Logger(label: "UVWebSocket")) throws {
        try options.validate()
        if let tls = options.tls {
            do { credentials = try TLSCredentials(tls) } catch { throw WebSocketServerError.tls(error) }
        } else {
            credentials = nil
        }
        self.options = options
        self.handler = handler
        self.ownsLoop = loop == nil
        let loop = try loop ?? EventLoop()
        self.loop = loop
        let settings = ConnectionSettings(
            role: .server, maxMessageSize: options.maxMessageSize, maxBackpressure: options.maxBackpressure,
            keepAliveInterval: options.keepAliveInterval, keepAliveTimeout: options.keepAliveTimeout,
            handshakeTimeout: options.handshakeTimeout, closeTimeout: options.closeTimeout,
            headLimits: options.requestHeadLimits)
        let context = LoopContext.acquire(on: loop, receiveBufferSize: options.receiveBufferSize,
                                          granularity: settings.wheelGranularity)
        endpoint = Endpoint(handler: handler, context: context, settings: settings, logger: logger,
                            compression: options.compression, extensions: options.extensions)
        endpoint.owner = self
        // Weak: a connection can outlive its server (see the type's notes).
        endpoint.httpPhaseEnded = { [weak self] connection, outcome in
            guard let self else { return connection.abortHTTP() }
            httpPhaseEnded(connection, outcome)
        }
        endpoint.connectionClosed = { [weak self] connection in self?.connectionDidClose(connection) }
        endpoint.httpDrained = { [weak self] connection in self?.fileResponder?.drained(connection) }
        endpoint.roundTrips.isCollecting = options.metricsInterval != nil
        startMetricsTimer()
    }

    /// Makes this server loop `index` of a group of `loops`: its inbox (the
    /// door the group posts to), its share of the group's connection count,
    /// and its loop named in its log lines.
    func becomeLoop(_ index: Int, of loops: Int, inboxLimit: Int, counter: ConnectionCounter) -> LoopInbox<LoopCommand> {
        endpoint.loopIndex = UInt16(index)
        groupCount = counter
        if loops > 1 { logger[metadataKey: "loop"] = "\(index)" }
        // Weak: a server released with records pending (its group's `listen`
        // threw after a broadcast) still has them handed over as it closes
        // the inbox; they are let go of without it.
        let inbox = LoopInbox<LoopCommand>(loop: loop, limit: inboxLimit, keepsLoopAlive: true,
                                           receive: { [weak self] command, payload in
                                               guard let self else { return LoopCommand.discard(command) }
                                               receive(command, payload: payload)
                                           },
                                           batchEnded: { [weak self] in self?.inboxBatchEnded() })
        self.inbox = inbox
        return inbox
    }

    /// Publishes this loop's figures to its group at each report.
    func publishMetrics(to slot: Lock<WebSocketMetrics>) {
        publishedMetrics = slot
        startMetricsTimer()
    }

    private func startMetricsTimer() {
        guard metricsTimer == nil, options.metricsInterval != nil || publishedMetrics != nil else { return }
        let interval = options.metricsInterval?.milliseconds ?? 250
        let timer = Timer(loop: loop)
        // The first report at the loop's first turn, so that a scrape finds
        // every series (at zero) from the start.
        timer.start(timeout: 0, repeat: interval) { [weak self] in self?.reportMetrics() }
        // Reports alone do not keep the loop running.
        timer.unref()
        metricsTimer = timer
    }

    /// Hands this loop's counters to swift-metrics now (what grew since the
    /// last report), and in a group to the figures other loops read. The
    /// metrics timer calls it; call it before serving a scrape from this loop
    /// for figures not older than the call. Loop thread only.
    public func reportMetrics() {
        loop.checkThread("WebSocketServer.reportMetrics")
        if let publishedMetrics {
            let figures = metrics
            publishedMetrics.withLock { $0 = figures }
        }
        guard options.metricsInterval != nil else { return }
        let reporter = metricsReporter ?? MetricsReporter(loopIndex: loopIndex)
        metricsReporter = reporter
        reporter.report(endpoint.metrics, roundTrips: &endpoint.roundTrips)
    }

    /// Closes what the server opened, so that no handle outlives it and no
    /// callback reaches it: connections are dropped when the loop is the
    /// server's own (nobody runs it after this), or get 1001 on a shared loop.
    deinit {
        for case let connection? in connections.entries {
            if !ownsLoop && connection.isOpen {
                connection.close(code: .goingAway, reason: "server released")
            } else if connection.isInHTTPPhase {
                connection.abortHTTP()
            } else {
                connection.abort()
            }
        }
        if !finished { finishShutdown() }
        if ownsLoop && !loopClosed { try? loop.close() }
    }

    /// Accepts WebSocket requests on `path` (such as "/ws").
    public func route(webSocket path: String) {
        loop.checkThread("WebSocketServer.route")
        webSocketRoutes[path] = .some(nil)
    }

    /// Accepts WebSocket requests on `path` as `upgrade` decides: it sees the
    /// request (query, headers, cookies, peer) before the 101 and accepts,
    /// choosing the subprotocol, the connection's `data` and extra headers,
    /// or refuses with a status. It runs on the loop thread, after the
    /// handshake's own checks (RFC 6455 §4.2.1) and the origin list.
    public func route(webSocket path: String, upgrade: @escaping UpgradeHook<Handler.ConnectionData>) {
        loop.checkThread("WebSocketServer.route")
        webSocketRoutes[path] = .some(upgrade)
    }

    /// Serves files under `root` for every other path ("/" is index.html),
    /// over persistent HTTP/1.1 connections, without blocking the loop on the
    /// disk (docs/static-files.md). Throws `.staticRootNotFound` or
    /// `.invalidOption`.
    public func serveFiles(from root: String, options: StaticFileOptions = StaticFileOptions()) throws {
        loop.checkThread("WebSocketServer.serveFiles")
        try options.validate()
        guard let files = StaticFiles(root: root, options: options) else { throw WebSocketServerError.staticRootNotFound(root) }
        fileResponder = FileResponder(files: files, endpoint: endpoint, maxBackpressure: self.options.maxBackpressure)
        endpoint.httpIdleTimeout = options.keepAliveTimeout.milliseconds
        endpoint.httpSendTimeout = options.sendTimeout.milliseconds
    }

    /// Binds and listens on `host`: an address, "localhost" (127.0.0.1), or a
    /// name, resolved here (blocking: this is start-up) and bound to the first
    /// of its addresses that takes it. Returns the port (useful with port 0).
    /// Throws `WebSocketServerError.hostNotFound` or `.cannotListen`; the server
    /// stays usable, so a caller may try another port.
    @discardableResult
    public func listen(host: String = "127.0.0.1", port: Int, reusePort: Bool = false, backlog: Int32 = 1024) throws -> Int {
        loop.checkThread("WebSocketServer.listen")
        guard (0...65535).contains(port) else {
            throw WebSocketServerError.invalidOption("port must be 0...65535, got \(port)")
        }
        guard backlog > 0 else { throw WebSocketServerError.invalidOption("backlog must be positive, got \(backlog)") }
        if finished || shuttingDown { throw WebSocketServerError.notRunnable("listen after shutdown") }
        var lastError = UVError(-22) // EINVAL, for a name with no address
        for address in try addresses(host: host, port: port) {
            let listener = TCPListener(loop: loop)
            do {
                try listener.bind(address, reusePort: reusePort)
                // libuv reports a taken port here, not at bind.
                try listener.listen(backlog: backlog) { [weak self] error in
                    guard let self else { return }
                    if let error {
                        logger.warning("accept failed: \(error)")
                        return
                    }
                    accept()
                }
                let bound = try listener.localAddress().port
                self.listener?.close()
                self.listener = listener
                logger.info("listening", metadata: ["host": "\(host)", "port": "\(bound)"])
                return bound
            } catch {
                listener.close()
                lastError = error as? UVError ?? lastError
            }
        }
        throw WebSocketServerError.cannotListen(host: host, port: port, reason: lastError)
    }

    /// Stops listening (a group whose other loops could not listen).
    func stopListening() {
        listener?.close()
        listener = nil
    }

    private func addresses(host: String, port: Int) throws -> [SocketAddress] {
        if host == "localhost" || SocketAddress.isNumeric(host) {
            do { return [try SocketAddress(host: host, port: port)] } catch let error as UVError {
                throw WebSocketServerError.cannotListen(host: host, port: port, reason: error)
            }
        }
        do { return try AddressResolver.resolveNow(host, port: port, on: loop) } catch {
            throw WebSocketServerError.hostNotFound(host: host, reason: error)
        }
    }

    /// Runs the loop until shutdown has closed every connection. Handlers run
    /// on this thread.
    ///
    /// - A second call throws `WebSocketServerError.notRunnable`: the loop is
    ///   closed once `run()` returns; make a new server.
    /// - `loop.stop()` (from a handler, say) ends it too: connections still
    ///   open get 1001 and are dropped, and `run()` returns once their
    ///   handles have closed.
    public func run() throws {
        if ran { throw WebSocketServerError.notRunnable("run() was already called; a server runs once") }
        ran = true
        // True when `loop.stop()` ended it with handles still active.
        if loop.run() || !finished {
            if !shuttingDown { shutdown(drainTimeout: .zero) }
            for case let connection? in connections.entries { connection.abort() }
            // Each run ends when no handle is left or at another `stop()`.
            while !finished && loop.run() {}
            if !finished { finishShutdown() }
        }
        // Closing the loop runs the last close callbacks (which give rings
        // back) and fails if any handle was left open.
        if ownsLoop {
            loopClosed = true
            try loop.close()
        }
    }

    /// Handles SIGINT and SIGTERM with a graceful shutdown.
    public func shutdownOnSignals(_ signals: [Int32] = [SIGINT, SIGTERM], drainTimeout: Duration = .seconds(5)) throws {
        for number in signals {
            let watcher = SignalWatcher(loop: loop)
            do {
                try watcher.start(signal: number) { [weak self] signum in
                    guard let self else { return }
                    logger.info("signal \(signum)")
                    if let group { group.requestShutdown(drainTimeout: drainTimeout) } else { shutdown(drainTimeout: drainTimeout) }
                }
            } catch {
                watcher.close()
                throw error
            }
            watcher.unref()
            signalWatchers.append(watcher)
        }
    }

    /// Reads the TLS certificate and key files again (after a renewal): new
    /// connections use them, open ones keep theirs. On failure the old ones
    /// stay in use. Any thread.
    public func reloadCertificates() throws {
        guard let credentials else { throw WebSocketServerError.invalidOption("reloadCertificates() needs options.tls") }
        do { try credentials.reload() } catch { throw WebSocketServerError.tls(error) }
    }

    /// Reloads the certificates on SIGHUP, the signal daemons reread their
    /// configuration on; a failure is logged and the old ones stay in use.
    public func reloadCertificatesOnHangUp() throws {
        let watcher = SignalWatcher(loop: loop)
        do {
            try watcher.start(signal: SIGHUP) { [weak self] _ in
                guard let self else { return }
                do {
                    if let group { try group.reloadCertificates() } else { try reloadCertificates() }
                    logger.info("TLS certificates reloaded")
                } catch {
                    logger.error("TLS certificates not reloaded: \(error)")
                }
            }
        } catch {
            watcher.close()
            throw error
        }
        watcher.unref()
        signalWatchers.append(watcher)
    }

    /// Graceful shutdown: stop accepting, send 1001 to every open WebSocket, wait
    /// up to `drainTimeout` for the closing handshakes, then drop what is left.
    /// `run()` returns once every handle is closed. Loop thread only.
    /// Once the server has stopped, `completion` runs at once.
    public func shutdown(drainTimeout: Duration = .seconds(5), completion: (() -> Void)? = nil) {
        loop.checkThread("WebSocketServer.shutdown")
        if finished {
            completion?()
            return
        }
        if let completion { shutdownCompletion = completion }
        if shuttingDown { return }
        shuttingDown = true
        fileResponder?.shuttingDown = true
        logger.info("shutting down", metadata: ["open": "\(connections.count)",
                                                "drainTimeout": "\(drainTimeout)"])
        listener?.close()
        listener = nil
        for case let connection? in connections.entries {
            if connection.isOpen {
                connection.close(code: .goingAway, reason: "server shutting down")
            } else if connection.isRespondingHTTP && fileResponder != nil {
                // A file on its way ends, then the connection closes (the
                // drain timeout bounds it like a closing handshake).
                continue
            } else if connection.isInHTTPPhase {
                connection.abortHTTP()
            }
        }
        if connections.count == 0 {
            finishShutdown()
            return
        }
        let timer = Timer(loop: loop)
        drainTimer = timer
        timer.start(timeout: drainTimeout.milliseconds) { [weak self] in
            guard let self else { return }
            logger.info("drain timeout: dropping the rest", metadata: ["open": "\(connections.count)"])
            for case let connection? in connections.entries { connection.abort() }
        }
    }

    /// `shutdown` from any thread: before `run()` (it then stops at its first
    /// turn), during it, or after it (nothing is left to do).
    public func requestShutdown(drainTimeout: Duration = .seconds(5)) {
        let server = LoopBound(self)
        loop.execute { server.value.shutdown(drainTimeout: drainTimeout) }
    }

    private func finishShutdown() {
        finished = true
        if shuttingDown {
            let m = metrics
            let closes = m.closesByCode.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }
            logger.info("stopped", metadata: ["accepted": "\(m.connectionsAccepted)", "webSockets": "\(m.webSocketsOpened)",
                                              "refused": "\(m.handshakesRejected)", "closes": "\(closes.joined(separator: " "))"])
        }
        listener?.close()
        listener = nil
        drainTimer?.close()
        drainTimer = nil
        // The last figures reach the backend before the loop stops.
        reportMetrics()
        metricsTimer?.close()
        metricsTimer = nil
        for watcher in signalWatchers { watcher.close() }
        signalWatchers.removeAll()
        // The group reads the final figures once the door is shut; records
        // still pending are carried out (sends to closed connections drop,
        // shared messages are let go, handed-over sockets closed).
        group?.loopStopped(loopIndex, metrics: metrics)
        if loopIndex == 0 { group?.backplane?.stop() }
        inbox?.close()
        inbox = nil
        endpoint.context.release()
        let completion = shutdownCompletion
        shutdownCompletion = nil
        completion?()
    }

    // MARK: Connections

    private func accept() {
        if let group, group.distribution == .roundRobin, group.loopCount > 1 {
            let target = nextLoop
            nextLoop = (nextLoop + 1) % group.loopCount
            if target != loopIndex {
                handOver(to: target, in: group)
                return
            }
        }
        let connection = insertConnection()
        do {
            try connection.accept(from: listener!)
        } catch {
            logger.debug("accept failed: \(error)")
            connection.abortHTTP()
        }
    }

    /// Round-robin acceptance: the socket is accepted here, and its
    /// descriptor (a duplicate: the handle here closes its own) goes to the
    /// target loop, since a libuv handle cannot change loops.
    private func handOver(to target: Int, in group: WebSocketServerGroup<Handler>) {
        let accepted = TCPStream(loop: loop)
        defer { accepted.close() }
        do {
            try accepted.accept(from: listener!)
            var command = LoopCommand(.adopt)
            command.descriptor = try accepted.handle.duplicateDescriptor()
            if !group.inboxes[target].post(command, control: true) {
                logger.debug("connection dropped: loop \(target) is not taking connections")
                Glibc.close(command.descriptor)
            }
        } catch {
            logger.debug("accept failed: \(error)")
        }
    }

    /// Takes a connection accepted by another loop of the group.
    func adopt(descriptor: Int32) {
        if shuttingDown || finished {
            Glibc.close(descriptor)
            return
        }
        let connection = insertConnection()
        do {
            try connection.adopt(descriptor: descriptor)
        } catch {
            logger.debug("adopting a connection failed: \(error)")
            connection.abortHTTP()
        }
    }

    private func insertConnection() -> WebSocketConnection<Handler> {
        let connection = WebSocketConnection(endpoint: endpoint, tls: credentials?.current)
        let slot = connections.insert(connection)
        if Int(slot) == unretainedBySlot.count { unretainedBySlot.append(nil) }
        unretainedBySlot[Int(slot)] = Unmanaged.passUnretained(connection)
        connection.tableSlot = slot
        if Int(slot) == serials.count { serials.append(0) }
        serials[Int(slot)] &+= 1
        groupCount?.add(1)
        endpoint.metrics.connectionsAccepted &+= 1
        endpoint.metrics.connectionsOpen = connections.count
        return connection
    }

    var isOverConnectionLimit: Bool {
        options.maxConnections > 0 && (groupCount?.value ?? connections.count) > options.maxConnections
    }

    private func connectionDidClose(_ connection: WebSocketConnection<Handler>) {
        fileResponder?.connectionClosed(connection)
        let slot = connection.tableSlot
        guard slot >= 0, connections[slot] === connection else { return }
        leaveTopics(slot: slot)
        connection.tableSlot = -1
        connections.remove(at: slot)
        unretainedBySlot[Int(slot)] = nil
        groupCount?.add(-1)
        endpoint.metrics.connectionsOpen = connections.count
        if shuttingDown && connections.count == 0 && !finished { finishShutdown() }
    }

    /// The open WebSocket connections (for broadcasts and admin pages).
    public func forEachOpenConnection(_ body: (WebSocketConnection<Handler>) -> Void) {
        loop.checkThread("WebSocketServer.forEachOpenConnection")
        for case let connection? in connections.entries where connection.isOpen { body(connection) }
    }
}

extension WebSocketConnection {
    /// The server this connection belongs to, for handlers that reach the other
    /// connections (`broadcast`, `forEachOpenConnection`); nil for a client's.
    public var server: WebSocketServer<Handler>? { owner as? WebSocketServer<Handler> }
}

@available(*, unavailable)
extension WebSocketServer: Sendable {}
