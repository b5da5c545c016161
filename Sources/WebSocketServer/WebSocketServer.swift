import Logging
import UVKit
import WebSocketCore
#if canImport(Glibc)
import Glibc
#endif

/// A WebSocket server on one libuv loop: the middleware the article describes.
/// Requests to a WebSocket route are upgraded (a plain request there gets 400),
/// every other path falls through to static files, and handlers run on the loop
/// thread.
///
/// Generic over its handler, so every call into it is direct. Create it, add
/// routes, `listen`, then `run()` on the thread that is to own the loop. Only
/// `requestShutdown` may be called from another thread.
public final class WebSocketServer<Handler: WebSocketHandler> {
    public let loop: EventLoop
    public let options: WebSocketOptions
    public let handler: Handler
    public var logger: Logger
    /// Counters, updated on the loop thread.
    @exclusivity(unchecked) public internal(set) var metrics = ServerMetrics()

    var webSocketPaths: Set<String> = []
    var staticFiles: StaticFiles?
    private var listener: TCPListener?
    private var connections: [WebSocketConnection<Handler>?] = []
    private var freeSlots: [Int32] = []
    private(set) var liveConnections = 0

    /// Where every WebSocket read of this loop lands (ReceiveBufferSize bytes),
    /// parsed in place while the read callback runs and empty between callbacks.
    /// One per loop rather than one per connection, so a large read size costs
    /// nothing per connection.
    @exclusivity(unchecked) var readRing: ByteRing
    /// Small rings for what a read leaves unparsed: a partial frame header or
    /// control frame (payloads stream out as they arrive), at most 131 bytes.
    /// A connection holds one only while such a remainder waits for its next
    /// read, so an idle connection holds none.
    let leftoverPool: RingPool
    /// Where reads land once a connection only waits for the peer's FIN.
    let discardBuffer: UnsafeMutableRawBufferPointer

    // The cork: frames produced while read callbacks run are gathered here and
    // written with one system call when the connection changes or, at the
    // latest, when the poll phase ends (the check handle). libuv reads one
    // stream up to 32 times in a row, so the echo of a large message read in
    // ring-sized pieces leaves in cork-sized writes, not one write per piece.
    // One per loop, owned by one connection at a time.
    private let corkStorage: UnsafeMutableRawPointer
    private let corkCapacity = 64 * 1024
    @exclusivity(unchecked) private var corkCount = 0
    @exclusivity(unchecked) private unowned(unsafe) var corkOwner: WebSocketConnection<Handler>?
    /// The owner's identity, compared without loading (and retaining) it.
    @exclusivity(unchecked) private var corkOwnerID: ObjectIdentifier?
    @exclusivity(unchecked) private var corkDepth = 0
    /// Payloads from this size on go to the socket by reference (writev of
    /// header and payload) instead of being copied into the cork.
    let byReferenceThreshold = 16 * 1024

    // Deadlines: one coarse timer sweeping a timing wheel of connection slots.
    @exclusivity(unchecked) var wheel: TimingWheel
    let keepAlive: KeepAlivePolicy
    struct Timeouts { var handshake: UInt64; var close: UInt64 }
    let timeouts: Timeouts
    private let sweepTimer: Timer
    private let flushCheck: Check
    private var expired: [Int32] = []

    /// `options.maxBackpressure`, kept apart: reading `options` on the hot path
    /// would copy the whole struct and retain its arrays, per message.
    let maxBackpressure: Int
    let hardQueueLimit: Int
    private let ownsLoop: Bool
    private var signalWatchers: [SignalWatcher] = []
    private var drainTimer: Timer?
    private var shuttingDown = false
    private var finished = false
    private var shutdownCompletion: (() -> Void)?

    /// - Parameter loop: the loop to run on; by default the server makes its own
    ///   and closes it when `run()` returns.
    public init(options: WebSocketOptions = WebSocketOptions(), handler: Handler, loop: EventLoop? = nil,
                logger: Logger = Logger(label: "UVWebSocket")) throws {
        try options.validate()
        self.options = options
        self.handler = handler
        self.logger = logger
        self.ownsLoop = loop == nil
        self.loop = try loop ?? EventLoop()
        readRing = ByteRing(capacity: options.receiveBufferSize)
        leftoverPool = RingPool(ringCapacity: ByteRing.minimumCapacity)
        discardBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        corkStorage = .allocate(byteCount: 64 * 1024, alignment: 16)
        keepAlive = KeepAlivePolicy(interval: options.keepAliveInterval.milliseconds,
                                    timeout: options.keepAliveTimeout.milliseconds)
        timeouts = Timeouts(handshake: options.handshakeTimeout.milliseconds, close: options.closeTimeout.milliseconds)
        maxBackpressure = options.maxBackpressure
        hardQueueLimit = 2 * options.maxBackpressure + options.receiveBufferSize
        // Ticks fine enough that no deadline fires more than an eighth late.
        let periods = [keepAlive.interval, keepAlive.timeout, timeouts.handshake, timeouts.close].filter { $0 > 0 }
        let granularity = min(max((periods.min() ?? 1000) / 8, 10), 1000)
        self.loop.updateTime()
        wheel = TimingWheel(granularity: granularity, now: self.loop.now)
        sweepTimer = Timer(loop: self.loop)
        flushCheck = Check(loop: self.loop)
    }

    deinit {
        discardBuffer.deallocate()
        corkStorage.deallocate()
        readRing.deallocate()
    }

    /// Accepts WebSocket requests on `path` (such as "/ws").
    public func route(webSocket path: String) {
        webSocketPaths.insert(path)
    }

    /// Serves files under `root` for every other path ("/" is index.html).
    public func serveFiles(from root: String) throws {
        guard let files = StaticFiles(root: root) else {
            throw WebSocketServerError.invalidOption("static root \(root) does not exist")
        }
        staticFiles = files
    }

    /// Binds and listens. Returns the port (useful with port 0).
    @discardableResult
    public func listen(host: String = "127.0.0.1", port: Int, reusePort: Bool = false, backlog: Int32 = 1024) throws -> Int {
        let listener = TCPListener(loop: loop)
        do {
            try listener.bind(SocketAddress(host: host, port: port), reusePort: reusePort)
            try listener.listen(backlog: backlog) { [unowned self] error in
                if let error {
                    logger.warning("accept failed: \(error)")
                    return
                }
                accept()
            }
        } catch {
            listener.close()
            throw error
        }
        self.listener = listener
        sweepTimer.start(timeout: wheel.granularity, repeat: wheel.granularity) { [unowned self] in sweep() }
        // The sweep alone must not keep the loop running.
        sweepTimer.unref()
        flushCheck.start { [unowned self] in flushCork() }
        flushCheck.unref()
        let bound = try listener.localAddress().port
        logger.info("listening", metadata: ["host": "\(host)", "port": "\(bound)"])
        return bound
    }

    /// Runs the loop until shutdown has closed every connection. Handlers run
    /// on this thread.
    public func run() throws {
        loop.run()
        if !finished { finishShutdown() }
        // Closing the loop runs the last close callbacks (which give rings
        // back) and fails if any handle was left open.
        if ownsLoop { try loop.close() }
        leftoverPool.deallocateAll()
    }

    /// Handles SIGINT and SIGTERM with a graceful shutdown.
    public func shutdownOnSignals(_ signals: [Int32] = [SIGINT, SIGTERM], drainTimeout: Duration = .seconds(5)) throws {
        for number in signals {
            let watcher = SignalWatcher(loop: loop)
            try watcher.start(signal: number) { [unowned self] signum in
                logger.info("signal \(signum): shutting down")
                shutdown(drainTimeout: drainTimeout)
            }
            watcher.unref()
            signalWatchers.append(watcher)
        }
    }

    /// Graceful shutdown: stop accepting, send 1001 to every open WebSocket, wait
    /// up to `drainTimeout` for the closing handshakes, then drop what is left.
    /// `run()` returns once every handle is closed. Loop thread only.
    public func shutdown(drainTimeout: Duration = .seconds(5), completion: (() -> Void)? = nil) {
        if let completion { shutdownCompletion = completion }
        if shuttingDown { return }
        shuttingDown = true
        listener?.close()
        listener = nil
        for case let connection? in connections {
            switch connection.state {
            case .handshake: connection.closeNow()
            case .open: connection.close(code: .goingAway, reason: "server shutting down")
            default: break
            }
        }
        if liveConnections == 0 {
            finishShutdown()
            return
        }
        let timer = Timer(loop: loop)
        drainTimer = timer
        timer.start(timeout: drainTimeout.milliseconds) { [unowned self] in
            logger.info("drain timeout: dropping \(liveConnections) connections")
            for case let connection? in connections { connection.abort() }
        }
    }

    /// `shutdown` from any thread.
    public func requestShutdown(drainTimeout: Duration = .seconds(5)) {
        let server = LoopBound(self)
        loop.execute { server.value.shutdown(drainTimeout: drainTimeout) }
    }

    private func finishShutdown() {
        finished = true
        listener?.close()
        listener = nil
        sweepTimer.close()
        flushCheck.close()
        drainTimer?.close()
        drainTimer = nil
        for watcher in signalWatchers { watcher.close() }
        signalWatchers.removeAll()
        let completion = shutdownCompletion
        shutdownCompletion = nil
        completion?()
    }

    // MARK: Connections

    private func accept() {
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = Int32(connections.count)
            connections.append(nil)
            wheel.reserve(slots: connections.count)
        }
        let connection = WebSocketConnection(server: self, slot: slot)
        do {
            try connection.accept(from: listener!)
            connection.setNoDelay(true)
            try connection.startReading()
        } catch {
            logger.debug("accept failed: \(error)")
            connection.close()
            freeSlots.append(slot)
            return
        }
        connections[Int(slot)] = connection
        liveConnections += 1
        metrics.connectionsAccepted &+= 1
        metrics.connectionsOpen = liveConnections
        connection.scheduleTimer()
    }

    var isOverConnectionLimit: Bool {
        options.maxConnections > 0 && liveConnections > options.maxConnections
    }

    func connectionDidClose(_ connection: WebSocketConnection<Handler>) {
        wheel.cancel(connection.slot)
        connections[Int(connection.slot)] = nil
        freeSlots.append(connection.slot)
        liveConnections -= 1
        metrics.connectionsOpen = liveConnections
        if shuttingDown && liveConnections == 0 && !finished { finishShutdown() }
    }

    /// The open WebSocket connections (for broadcasts and admin pages).
    public func forEachOpenConnection(_ body: (WebSocketConnection<Handler>) -> Void) {
        for case let connection? in connections where connection.isOpen { body(connection) }
    }

    private func sweep() {
        let now = loop.now
        wheel.sweep(now: now, into: &expired)
        for slot in expired {
            connections[Int(slot)]?.timerExpired(now: now)
        }
        expired.removeAll(keepingCapacity: true)
    }

    // MARK: The cork

    func beginCork() { corkDepth += 1 }

    /// Inside the poll phase the check handle flushes; elsewhere (timers,
    /// `execute`) nothing would, so the caller's frames go out now.
    func endCork() {
        corkDepth -= 1
    }

    /// Copies a frame into the cork. Returns false, copying nothing, when
    /// making room flushed the connection's own corked bytes and the kernel left
    /// some of them queued: the frame must then queue behind them.
    @inline(__always)
    func cork(_ connection: WebSocketConnection<Handler>, opcode: Opcode, fin: Bool, payload: UnsafeRawBufferPointer) -> Bool {
        let frameLength = FrameWriter.headerLength(payloadLength: payload.count, masked: false) + payload.count
        if corkOwnerID != ObjectIdentifier(connection) || corkCount + frameLength > corkCapacity {
            flushCork()
            if !connection.outbound.isEmpty { return false }
            corkOwner = connection
            corkOwnerID = ObjectIdentifier(connection)
        }
        corkCount += FrameWriter.writeFrame(into: corkStorage + corkCount, opcode: opcode, fin: fin, payload: payload)
        if corkDepth == 0 { flushCork() }
        return true
    }

    /// Hands over what is corked for `connection` (to go first in its next
    /// write); valid until the cork is next written.
    func takeCorked(for connection: WebSocketConnection<Handler>) -> UnsafeRawBufferPointer {
        if corkOwnerID != ObjectIdentifier(connection) {
            flushCork()
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        let bytes = UnsafeRawBufferPointer(start: corkStorage, count: corkCount)
        corkCount = 0
        corkOwner = nil
        corkOwnerID = nil
        return bytes
    }

    func flushCork() {
        guard corkOwnerID != nil, let owner = corkOwner else { return }
        let count = corkCount
        corkCount = 0
        corkOwner = nil
        corkOwnerID = nil
        if count > 0 {
            owner.writeNow(UnsafeRawBufferPointer(start: corkStorage, count: count))
            _ = owner.checkBackpressure()
        }
    }

    func flushCork(ifOwner connection: WebSocketConnection<Handler>) {
        if corkOwnerID == ObjectIdentifier(connection) { flushCork() }
    }

    /// Drops what is corked for a connection that is closing.
    func forgetCork(_ connection: WebSocketConnection<Handler>) {
        if corkOwnerID == ObjectIdentifier(connection) {
            corkCount = 0
            corkOwner = nil
            corkOwnerID = nil
        }
    }
}

@available(*, unavailable)
extension WebSocketServer: Sendable {}
