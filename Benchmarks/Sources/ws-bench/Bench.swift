import Histogram
import UVKit
import WebSocketClient
#if canImport(Glibc)
import Glibc
#endif

struct BenchConfig {
    var host: String
    var port: Int
    var path: String
    var connections: Int
    var size: Int
    var inFlight: Int
    var duration: Double
    var warmup: Double
    var rate: Double?
    var text: Bool
    var raw: Bool
    var idle: Bool
    var sourceAddresses: Int
    var serverPID: Int32?
    var seed: UInt64
    var quiet: Bool
    /// Offer permessage-deflate (nil: none; false keeps both contexts, as
    /// browsers do; true asks for no context either way).
    var compression: Bool? = nil
    /// JSON-like text (compressible) instead of random bytes.
    var json = false
    /// With `idle`: each connection echoes one message before it idles.
    var idleMessage = false
    /// With compression: send uncompressed, so that only the server compresses.
    var sendUncompressed = false
    /// wss://: TLS, with any certificate accepted (a local server's own).
    var secure = false
    /// Fan-out: connection 0 publishes; every connection receives every message.
    var publish = false
    /// With `publish`: no connection here publishes.
    var receiveOnly = false
}

/// The load generator: N connections on one libuv loop, K messages in flight
/// on each (or a fixed total rate), every echo verified and timed.
final class Bench {
    let loop: EventLoop
    let config: BenchConfig
    let pattern: PayloadPattern
    /// The public client, on this loop; every WebSocket connection is its.
    let client: WebSocketClient<BenchHandler>
    var connections: [BenchConnection] = []
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)

    var size: Int { config.size }
    var raw: Bool { config.raw }
    var text: Bool { config.text }
    var path: String { config.path }
    var rate: Double? { config.rate }
    var hostHeader: String { "\(config.host):\(config.port)" }

    // Progress.
    var nextToConnect = 0
    var connecting = 0
    var ready = 0
    var failed = 0
    var firstError: String?
    var mismatches = 0
    var overloaded = 0
    var stopping = false
    var measuring = false
    var received = 0
    var receivedInSecond = 0
    var scheduled = 0.0
    var rateStart: UInt64 = 0
    var rateCursor = 0

    // Measurement window.
    var windowStart: UInt64 = 0
    var windowEnd: UInt64 = 0
    var clientCPUStart = CPUTimes(user: 0, kernel: 0)
    var clientCPUEnd = CPUTimes(user: 0, kernel: 0)
    var serverCPUStart: CPUTimes?
    var serverCPUEnd: CPUTimes?
    var serverRSSBefore: Int?
    var serverRSSAfter: Int?
    var serverAnonRSSBefore: Int?
    var serverAnonRSSAfter: Int?

    private var timers: [Timer] = []

    init(config: BenchConfig) throws {
        self.config = config
        loop = try EventLoop()
        pattern = PayloadPattern(size: config.size, seed: config.seed, text: config.text, json: config.json)
        var options = WebSocketClientOptions()
        if let noContext = config.compression {
            var deflate = CompressionOptions.forClient
            deflate.ownContextTakeover = !noContext
            deflate.peerContextTakeover = !noContext
            // Sent uncompressed, a message costs this end the inflating of
            // the answer only: the server's deflate is then the costly side.
            deflate.minimumSize = config.sendUncompressed ? Int.max : 0
            options.compression = deflate
        }
        // The server's pings are answered (and counted); the client sends none.
        options.keepAliveInterval = .zero
        options.keepAliveTimeout = .zero
        options.maxMessageSize = max(config.size, 1) + 1024
        options.handshakeTimeout = .seconds(60)
        options.tls = TLSClientConfiguration(trust: .acceptAnyCertificate)
        client = try WebSocketClient(handler: BenchHandler(), options: options, loop: loop)
    }

    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    func log(_ line: String) {
        if !config.quiet { print(line); fflush(nil) }
    }

    // MARK: Running

    func run() throws -> Report {
        serverRSSBefore = config.serverPID.flatMap(ProcessStats.rss)
        serverAnonRSSBefore = config.serverPID.flatMap(ProcessStats.anonymousRSS)
        // Connect in waves: a burst of thousands of SYNs overflows the backlog.
        for _ in 0..<min(256, config.connections) { connectNext() }
        _ = timer(every: 1000) { [unowned self] in printProgress() }
        loop.run()
        for t in timers where !t.isClosing { t.close() }
        client.shutdown()
        while loop.runNoWait() {}
        try loop.close()
        return makeReport()
    }

    func timer(after ms: UInt64 = 0, every: UInt64 = 0, _ body: @escaping () -> Void) -> Timer {
        let t = Timer(loop: loop)
        t.start(timeout: every > 0 && ms == 0 ? every : ms, repeat: every, body)
        timers.append(t)
        return t
    }

    func connectNext() {
        guard nextToConnect < config.connections, !stopping else { return }
        let id = nextToConnect
        nextToConnect += 1
        let capacity = config.rate == nil ? max(1, config.inFlight) : 65536
        let connection = BenchConnection(bench: self, id: id, inFlightCapacity: capacity)
        connections.append(connection)
        connecting += 1
        let source = config.sourceAddresses > 1 ? "127.0.0.\(1 + id % config.sourceAddresses)" : nil
        if config.raw {
            let stream = RawStream(owner: connection, loop: loop, size: config.size)
            connection.rawStream = stream
            do {
                try stream.connect(to: SocketAddress(host: config.host, port: config.port),
                                   from: try source.map { try SocketAddress(host: $0, port: 0) })
            } catch {
                connectionFailed(connection, "connect: \(error)")
            }
            return
        }
        client.connect(to: "\(config.secure ? "wss" : "ws")://\(hostHeader)\(config.path)", from: source) { [unowned self] result in
            switch result {
            case .failure(let error):
                connectionFailed(connection, "\(error)")
            case .success(let socket):
                if connection.state == .closed {
                    socket.abort()
                    return
                }
                socket.data = Unmanaged.passUnretained(connection)
                connection.socket = socket
                connection.state = .running
                if config.compression != nil && !socket.usesCompression {
                    connectionFailed(connection, "the server did not agree to permessage-deflate")
                } else if config.idle && config.idleMessage {
                    // Ready once its one message has come back.
                    connection.sendMessage(at: Bench.nanoseconds())
                } else {
                    connectionReady(connection)
                }
            }
        }
    }

    func connectionReady(_ c: BenchConnection) {
        ready += 1
        connecting -= 1
        connectNext()
        checkAllConnected()
    }

    func connectionFailed(_ c: BenchConnection, _ message: String) {
        if c.state == .connecting { connecting -= 1 }
        if c.state != .closed {
            failed += 1
            if firstError == nil { firstError = "connection \(c.id): \(message)" }
            if c.state == .running { ready -= 1 }
            c.shut()
        }
        connectNext()
        checkAllConnected()
    }

    func mismatch(_ c: BenchConnection, _ message: String) {
        mismatches += 1
        connectionFailed(c, "MISMATCH: " + message)
    }

    private var started = false

    func checkAllConnected() {
        guard !started, nextToConnect == config.connections, connecting == 0 else { return }
        started = true
        log("connected: \(ready) of \(config.connections)\(failed > 0 ? ", failed: \(failed) (\(firstError ?? ""))" : "")")
        if config.idle {
            serverRSSAfter = config.serverPID.flatMap(ProcessStats.rss)
            serverAnonRSSAfter = config.serverPID.flatMap(ProcessStats.anonymousRSS)
            if let before = serverRSSBefore, let after = serverRSSAfter, ready > 0 {
                log("server RSS: \(before / 1024) KiB before, \(after / 1024) KiB with \(ready) connections: \((after - before) / ready) B per idle connection")
            }
            _ = timer(after: UInt64(config.duration * 1000)) { [unowned self] in finish() }
            return
        }
        for c in connections where c.state == .running && (!config.publish || (c.id == 0 && !config.receiveOnly)) {
            if config.rate == nil {
                for _ in 0..<config.inFlight { c.sendMessage(at: Bench.nanoseconds()) }
                c.flush()
            }
        }
        if config.rate != nil {
            rateStart = Bench.nanoseconds()
            _ = timer(every: 1) { [unowned self] in sendAtRate() }
        }
        _ = timer(after: UInt64(config.warmup * 1000)) { [unowned self] in startWindow() }
    }

    /// Fixed-rate mode: sends what is due since the start, round robin, each
    /// message stamped with the time it should have left (so a stall shows in
    /// the latency instead of being hidden: no coordinated omission).
    func sendAtRate() {
        guard let rate = config.rate, !stopping else { return }
        let now = Bench.nanoseconds()
        let due = Int(Double(now - rateStart) / 1e9 * rate) - Int(scheduled)
        if due <= 0 { return }
        let running = connections.filter { $0.state == .running }
        if running.isEmpty { return }
        for i in 0..<due {
            let intended = rateStart + UInt64((scheduled + Double(i)) / rate * 1e9)
            running[rateCursor % running.count].sendMessage(at: intended)
            rateCursor += 1
        }
        scheduled += Double(due)
        for c in running { c.flush() }
    }

    func startWindow() {
        histogram.reset()
        received = 0
        measuring = true
        windowStart = Bench.nanoseconds()
        clientCPUStart = ProcessStats.selfCPU()
        serverCPUStart = config.serverPID.flatMap(ProcessStats.cpuTimes)
        _ = timer(after: UInt64(config.duration * 1000)) { [unowned self] in finish() }
    }

    func finish() {
        windowEnd = Bench.nanoseconds()
        clientCPUEnd = ProcessStats.selfCPU()
        serverCPUEnd = config.serverPID.flatMap(ProcessStats.cpuTimes)
        if config.idle {
            serverRSSAfter = config.serverPID.flatMap(ProcessStats.rss) ?? serverRSSAfter
            serverAnonRSSAfter = config.serverPID.flatMap(ProcessStats.anonymousRSS) ?? serverAnonRSSAfter
        }
        stopping = true
        measuring = false
        for c in connections { c.shut() }
        for t in timers { t.close() }
    }

    /// A message came back; `latencyNanoseconds` is nil for a fan-out copy
    /// received by a connection that did not send it.
    func recordEcho(latencyNanoseconds: UInt64?) {
        receivedInSecond += 1
        if measuring {
            received += 1
            if let latencyNanoseconds { histogram.record(latencyNanoseconds) }
        }
    }

    func printProgress() {
        let open = connections.filter { $0.state == .running }.count
        log("[\(measuring ? "measure" : (started ? "warmup" : "connect"))] \(receivedInSecond) msg/s, open \(open), failed \(failed), mismatches \(mismatches)")
        receivedInSecond = 0
    }

    // MARK: Report

    func makeReport() -> Report {
        let seconds = Double(windowEnd &- windowStart) / 1e9
        let messages = Double(received)
        var serverCPU: CPUTimes?
        if let a = serverCPUStart, let b = serverCPUEnd { serverCPU = b - a }
        let clientCPU = clientCPUEnd - clientCPUStart
        let pings = connections.map(\.pingsAnswered)
        return Report(
            connections: config.connections, connected: ready, failed: failed,
            size: config.size, inFlight: config.inFlight, rate: config.rate, seconds: seconds,
            messages: received,
            messagesPerSecond: seconds > 0 ? messages / seconds : 0,
            megabytesPerSecond: seconds > 0 ? messages * Double(config.size) / seconds / 1e6 : 0,
            latencyMicroseconds: [
                "p50": Double(histogram.valueAtPercentile(50)) / 1000,
                "p90": Double(histogram.valueAtPercentile(90)) / 1000,
                "p99": Double(histogram.valueAtPercentile(99)) / 1000,
                "p99.9": Double(histogram.valueAtPercentile(99.9)) / 1000,
                "max": Double(histogram.max) / 1000,
            ],
            mismatches: mismatches, overloaded: overloaded, firstError: firstError,
            clientCPUSeconds: clientCPU.total, clientKernelCPUSeconds: clientCPU.kernel,
            serverCPUSeconds: serverCPU?.total, serverKernelCPUSeconds: serverCPU?.kernel,
            messagesPerServerCPUSecond: serverCPU.flatMap { $0.total > 0 ? messages / $0.total : nil },
            serverRSSBefore: serverRSSBefore, serverRSSAfter: serverRSSAfter,
            idleBytesPerConnection: (serverRSSBefore != nil && serverRSSAfter != nil && ready > 0) ? (serverRSSAfter! - serverRSSBefore!) / ready : nil,
            serverAnonRSSBefore: serverAnonRSSBefore, serverAnonRSSAfter: serverAnonRSSAfter,
            idleAnonymousBytesPerConnection: (serverAnonRSSBefore != nil && serverAnonRSSAfter != nil && ready > 0)
                ? (serverAnonRSSAfter! - serverAnonRSSBefore!) / ready : nil,
            minPingsAnswered: pings.min() ?? 0
        )
    }
}
