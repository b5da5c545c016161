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
    /// The URL as given: the client resolves its host and checks its certificate.
    var url = ""
    /// wss://: whom to trust.
    var trust = TLSTrust.system
    /// Extra request header lines and offered subprotocols.
    var headers: [String] = []
    var subprotocols: [String] = []
    /// echo (every byte checked), request (any reply answers the oldest
    /// request), connect (open, close, again), or idle.
    var scenario = Scenario.echo
    /// pubsub: how many connections of loop 0 publish.
    var publishers = 1
    /// Which loop of the run this bench is (0 on the calling thread).
    var loopIndex = 0
    /// The request scenario's payload: `{{counter}}` becomes a number that
    /// grows by one per request.
    var template: String?
    /// `--stage`s, this loop's share of each (empty: one steady load).
    var stages: [Stage] = []
    /// Connections this loop opens a second (nil: waves of 256 at once).
    var connectRate: Double?
    /// Seconds a connect may take, TCP to the 101, before it is a timeout.
    var handshakeTimeout = 60.0
}

enum Scenario: String, CaseIterable, Codable {
    case echo, request, connect, pubsub, idle
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
    /// This second's latencies: the one histogram a message is recorded in.
    /// Once a second its p99 goes into the series and, while measuring, it is
    /// added to `histogram` (the window's) and emptied.
    var secondHistogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    /// What the second the window began in held before it began: in that
    /// second's sample, not in the window.
    var beforeWindow: Histogram<UInt64>?
    /// One sample per second from the first connect to the end.
    var series: [Sample] = []
    var startedAt: UInt64 = 0
    /// Failures by class, and the detail of two of them.
    var errors: [ErrorClass: Int] = [:]
    var handshakeStatuses: [Int: Int] = [:]
    var peerCloseCodes: [UInt16: Int] = [:]
    /// stdout is a terminal: the live line goes there once a second.
    let live: Bool
    /// The run's loops together (one alone without --threads).
    let coordinator: RunCoordinator
    /// A staged run (`--stage`): the plan, where it is, and each stage's figures.
    let staged: Bool
    let plan: StagePlan
    var stageIndex = 0
    var stageStartedAt: UInt64 = 0
    /// `failed` and `received` when the stage began: its counts are the growth.
    var stageFailedAtStart = 0
    var stageReceivedAtStart = 0
    var stageHistogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    var finishedStages: [(seconds: Double, messages: Int, histogram: Histogram<UInt64>, errors: Int)] = []
    /// The load runs (a staged run's connections send from the moment they open).
    var loadStarted = false
    /// The open loop's rate now: the run's, or the current stage's.
    var currentRate: Double?

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
    /// Loop 0's Ctrl-C: every loop stops and the report so far is printed.
    private var interruptWatcher: SignalWatcher?
    /// The run ended at Ctrl-C, before its duration.
    var interrupted = false

    init(config: BenchConfig, coordinator: RunCoordinator) throws {
        self.config = config
        self.coordinator = coordinator
        live = coordinator.live
        staged = !config.stages.isEmpty
        plan = StagePlan(stages: config.stages, connectRate: config.connectRate)
        currentRate = config.rate
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
        options.handshakeTimeout = .milliseconds(Int64(config.handshakeTimeout * 1000))
        options.tls = TLSClientConfiguration(trust: config.trust)
        options.headers = config.headers
        options.subprotocols = config.subprotocols
        client = try WebSocketClient(handler: BenchHandler(), options: options, loop: loop)
        coordinator.register(self)
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

    /// Runs the loop until the end of the run; `makeReport` (or a merge) follows.
    func runLoop() throws {
        serverRSSBefore = config.serverPID.flatMap(ProcessStats.rss)
        serverAnonRSSBefore = config.serverPID.flatMap(ProcessStats.anonymousRSS)
        startedAt = Bench.nanoseconds()
        if config.scenario == .connect || staged {
            // No standing connections: the load is the connecting itself, or
            // the stages open them as they go.
            started = true
            coordinator.arrived()
        } else if let connectRate = config.connectRate {
            // A ramp: this many a second until all are open; then the load.
            _ = timer(every: 10) { [unowned self] in
                let due = Int(Double(Bench.nanoseconds() - startedAt) / 1e9 * connectRate) + 1
                while nextToConnect < min(due, config.connections) && connecting < 256 { connectNext() }
            }
        } else {
            // Connect in waves: a burst of thousands of SYNs overflows the backlog.
            for _ in 0..<min(256, config.connections) { connectNext() }
        }
        _ = timer(every: 1000) { [unowned self] in printProgress() }
        if coordinator.isFirst(self) {
            let watcher = SignalWatcher(loop: loop)
            try watcher.start(signal: SIGINT) { [unowned self] _ in coordinator.interrupt() }
            interruptWatcher = watcher
        }
        loop.run()
        for t in timers where !t.isClosing { t.close() }
        if let watcher = interruptWatcher, !watcher.isClosing { watcher.close() }
        client.shutdown()
        while loop.runNoWait() {}
        try loop.close()
    }

    func timer(after ms: UInt64 = 0, every: UInt64 = 0, _ body: @escaping () -> Void) -> Timer {
        let t = Timer(loop: loop)
        t.start(timeout: every > 0 && ms == 0 ? every : ms, repeat: every, body)
        timers.append(t)
        return t
    }

    func connectNext() {
        // A staged run opens as many as its stages ask, again after closing some.
        guard staged || nextToConnect < config.connections, !stopping else { return }
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
                connectionFailed(connection, "connect: \(error)", .other)
            }
            return
        }
        client.connect(to: config.url, from: source) { [unowned self] result in
            switch result {
            case .failure(let error):
                if case .handshakeRejected(let status, _) = error { handshakeStatuses[status, default: 0] += 1 }
                connectionFailed(connection, "\(error)", ErrorClass(error))
            case .success(let socket):
                if connection.state == .closed {
                    socket.abort()
                    return
                }
                if let close = client.handler.closedBeforeCompletion.removeValue(forKey: ObjectIdentifier(socket)) {
                    closedByPeer(connection, code: close.code, reason: close.reason)
                    return
                }
                socket.data = Unmanaged.passUnretained(connection)
                connection.socket = socket
                if config.compression != nil && !socket.usesCompression {
                    // Still connecting: the failure ends the connect (and aborts the socket).
                    connectionFailed(connection, "the server did not agree to permessage-deflate", .other)
                    return
                }
                connection.state = .running
                if config.idle && config.idleMessage {
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
        if wavesOfConnects { connectNext() }
        checkAllConnected()
        // A staged run's closed loop: a connection sends once it is open.
        if staged && loadStarted && config.rate == nil && !stopping {
            for _ in 0..<config.inFlight { c.sendMessage(at: Bench.nanoseconds()) }
        }
    }

    /// Each connect that ends starts the next (no ramp, no stages).
    var wavesOfConnects: Bool { !staged && config.connectRate == nil }

    func connectionFailed(_ c: BenchConnection, _ message: String, _ kind: ErrorClass) {
        if c.state == .connecting { connecting -= 1 }
        if c.state != .closed {
            failed += 1
            errors[kind, default: 0] += 1
            if firstError == nil { firstError = "connection \(c.id): \(message)" }
            if c.state == .running { ready -= 1 }
            c.shut()
        }
        if wavesOfConnects { connectNext() }
        checkAllConnected()
    }

    func mismatch(_ c: BenchConnection, _ message: String) {
        mismatches += 1
        connectionFailed(c, "MISMATCH: " + message, .mismatch)
    }

    /// The server closed a running connection.
    func closedByPeer(_ c: BenchConnection, code: UInt16, reason: String) {
        peerCloseCodes[code, default: 0] += 1
        connectionFailed(c, "server closed the connection (\(code) \(reason))", .closedByPeer)
    }

    var started = false
    /// pubsub: messages this loop's publishers sent, and whether they still send.
    var published: UInt64 = 0
    var publishing = false
    private var requestNumber = 0

    /// The request scenario's `{{counter}}`: 1, 2, 3, ... over this loop's requests.
    func nextRequestNumber() -> Int {
        requestNumber += 1
        return requestNumber
    }

    func checkAllConnected() {
        guard !started, nextToConnect == config.connections, connecting == 0 else { return }
        started = true
        log("connected: \(ready) of \(config.connections)\(failed > 0 ? ", failed: \(failed) (\(firstError ?? ""))" : "")")
        coordinator.arrived()
    }

    /// Every loop of the run has its connections: the load starts.
    func startLoad() {
        if config.scenario == .connect { return startChurn() }
        if staged { return startStages() }
        if config.idle {
            serverRSSAfter = config.serverPID.flatMap(ProcessStats.rss)
            serverAnonRSSAfter = config.serverPID.flatMap(ProcessStats.anonymousRSS)
            if let before = serverRSSBefore, let after = serverRSSAfter, ready > 0 {
                log("server RSS: \(before / 1024) KiB before, \(after / 1024) KiB with \(ready) connections: \((after - before) / ready) B per idle connection")
            }
            _ = timer(after: UInt64(config.duration * 1000)) { [unowned self] in finish() }
            return
        }
        for c in connections where c.state == .running && config.scenario != .pubsub
            && (!config.publish || (c.id == 0 && !config.receiveOnly)) {
            if config.rate == nil {
                for _ in 0..<config.inFlight { c.sendMessage(at: Bench.nanoseconds()) }
                c.flush()
            }
        }
        if config.scenario == .pubsub {
            publishing = true
            rateStart = Bench.nanoseconds()
            _ = timer(every: 1) { [unowned self] in publishAtRate() }
        } else if config.rate != nil {
            rateStart = Bench.nanoseconds()
            _ = timer(every: 1) { [unowned self] in sendAtRate() }
        }
        _ = timer(after: UInt64(config.warmup * 1000)) { [unowned self] in startWindow() }
    }

    /// Fixed-rate mode: sends what is due since the start, round robin, each
    /// message stamped with the time it should have left (so a stall shows in
    /// the latency instead of being hidden: no coordinated omission).
    func sendAtRate() {
        guard let rate = currentRate, !stopping else { return }
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
        beforeWindow = secondHistogram
        secondHistogram.reset()
        openWindow()
        _ = timer(after: UInt64(config.duration * 1000)) { [unowned self] in
            if config.scenario == .pubsub { stopPublishing() } else { finish() }
        }
    }

    /// The measurement window starts now: counts, the window's histogram
    /// and both processes' CPU times from here.
    func openWindow() {
        histogram.reset()
        received = 0
        measuring = true
        windowStart = Bench.nanoseconds()
        clientCPUStart = ProcessStats.selfCPU()
        serverCPUStart = config.serverPID.flatMap(ProcessStats.cpuTimes)
    }

    /// Ctrl-C: the window ends now (or, before it began, is empty).
    func interrupt() {
        if stopping { return }
        interrupted = true
        if !measuring { openWindow() }
        finish()
    }

    func finish() {
        if let watcher = interruptWatcher, !watcher.isClosing { watcher.close() }
        windowEnd = Bench.nanoseconds()
        clientCPUEnd = ProcessStats.selfCPU()
        serverCPUEnd = config.serverPID.flatMap(ProcessStats.cpuTimes)
        if config.idle {
            serverRSSAfter = config.serverPID.flatMap(ProcessStats.rss) ?? serverRSSAfter
            serverAnonRSSAfter = config.serverPID.flatMap(ProcessStats.anonymousRSS) ?? serverAnonRSSAfter
        }
        // The last, partial second of the window.
        if measuring { histogram.add(secondHistogram) }
        if staged && loadStarted && finishedStages.count == stageIndex { endStage() }
        stopping = true
        measuring = false
        for c in connections { c.shut() }
        for t in timers { t.close() }
    }

    /// A message came back; `latencyNanoseconds` is nil for a fan-out copy
    /// received by a connection that did not send it.
    func recordEcho(latencyNanoseconds: UInt64?) {
        receivedInSecond += 1
        if measuring { received += 1 }
        if let latencyNanoseconds { secondHistogram.record(latencyNanoseconds) }
        if staged, let latencyNanoseconds { stageHistogram.record(latencyNanoseconds) }
    }

    /// Once a second: a sample of the series and, on a terminal, the live line.
    func printProgress() {
        let open = connections.filter { $0.state == .running }.count
        let phase = staged && loadStarted ? "stage \(stageIndex + 1)" : measuring ? "measure" : (started ? "warmup" : "connect")
        var whole = secondHistogram
        if let before = beforeWindow {
            whole.add(before)
            beforeWindow = nil
        }
        let sample = Sample(second: series.count + 1, phase: phase, open: open, messages: receivedInSecond,
                            p99Microseconds: whole.totalCount > 0 ? Double(whole.valueAtPercentile(99)) / 1000 : nil,
                            errors: errors.values.reduce(0, +))
        series.append(sample)
        coordinator.report(sample, latencies: whole)
        if measuring { histogram.add(secondHistogram) }
        receivedInSecond = 0
        secondHistogram.reset()
    }

    // MARK: Report

    /// The latency distribution's points for the report's plot.
    static let percentiles: [Double] = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100]

    /// The run's report from every loop's bench (one without --threads),
    /// read after their threads have ended. Counts add up, histograms merge
    /// (`add`, not an average of percentiles), and the window runs from the
    /// first loop's start to the last one's end; CPU figures are the
    /// process's (every thread) and the server's over that window.
    static func report(_ benches: [Bench]) -> Report {
        let first = benches[0]
        let config = first.config
        var histogram = first.histogram
        for bench in benches.dropFirst() { histogram.add(bench.histogram) }
        let windowStart = benches.map(\.windowStart).min()!
        let windowEnd = benches.map(\.windowEnd).max()!
        let seconds = Double(windowEnd &- windowStart) / 1e9
        let received = benches.map(\.received).reduce(0, +)
        let messages = Double(received)
        let clientCPU = benches.max { $0.windowEnd < $1.windowEnd }!.clientCPUEnd
            - benches.min { $0.windowStart < $1.windowStart }!.clientCPUStart
        var serverCPU: CPUTimes?
        if let a = benches.min(by: { $0.windowStart < $1.windowStart })!.serverCPUStart,
           let b = benches.max(by: { $0.windowEnd < $1.windowEnd })!.serverCPUEnd { serverCPU = b - a }
        let ready = benches.map(\.ready).reduce(0, +)
        let pings = benches.flatMap { $0.connections.map(\.pingsAnswered) }
        // The server's memory: before the first loop connected, after the last.
        let rssBefore = benches.compactMap(\.serverRSSBefore).min()
        let rssAfter = benches.compactMap(\.serverRSSAfter).max()
        let anonBefore = benches.compactMap(\.serverAnonRSSBefore).min()
        let anonAfter = benches.compactMap(\.serverAnonRSSAfter).max()
        var errors: [ErrorClass: Int] = [:]
        var statuses: [String: Int] = [:]
        var codes: [String: Int] = [:]
        for bench in benches {
            for (kind, count) in bench.errors { errors[kind, default: 0] += count }
            for (status, count) in bench.handshakeStatuses { statuses[String(status), default: 0] += count }
            for (code, count) in bench.peerCloseCodes { codes[String(code), default: 0] += count }
        }
        // The series, second by second over the loops that reported it, with
        // each second's p99 from the loops' histograms added (the coordinator
        // merged them as the seconds came).
        var series: [Sample] = []
        for index in 0..<(benches.map(\.series.count).max() ?? 0) {
            let parts = benches.filter { index < $0.series.count }
            let p99 = benches.count == 1 ? parts[0].series[index].p99Microseconds
                : first.coordinator.mergedP99(second: index + 1)
            series.append(Sample.merged(parts.map { $0.series[index] }, p99: p99))
        }
        func us(_ p: Double) -> Double { Double(histogram.valueAtPercentile(p)) / 1000 }
        return Report(
            connections: config.connections * benches.count, connected: ready,
            failed: benches.map(\.failed).reduce(0, +),
            size: config.size, inFlight: config.inFlight, rate: first.staged ? nil : config.rate.map { $0 * Double(benches.count) },
            seconds: seconds,
            messages: received,
            messagesPerSecond: seconds > 0 ? messages / seconds : 0,
            megabytesPerSecond: seconds > 0 ? messages * Double(config.size) / seconds / 1e6 : 0,
            latencyMicroseconds: ["p50": us(50), "p90": us(90), "p99": us(99), "p99.9": us(99.9), "p99.99": us(99.99),
                                  "max": Double(histogram.max) / 1000],
            mismatches: benches.map(\.mismatches).reduce(0, +), overloaded: benches.map(\.overloaded).reduce(0, +),
            firstError: benches.lazy.compactMap(\.firstError).first,
            clientCPUSeconds: clientCPU.total, clientKernelCPUSeconds: clientCPU.kernel,
            serverCPUSeconds: serverCPU?.total, serverKernelCPUSeconds: serverCPU?.kernel,
            messagesPerServerCPUSecond: serverCPU.flatMap { $0.total > 0 ? messages / $0.total : nil },
            serverRSSBefore: rssBefore, serverRSSAfter: rssAfter,
            idleBytesPerConnection: (rssBefore != nil && rssAfter != nil && ready > 0) ? (rssAfter! - rssBefore!) / ready : nil,
            serverAnonRSSBefore: anonBefore, serverAnonRSSAfter: anonAfter,
            idleAnonymousBytesPerConnection: (anonBefore != nil && anonAfter != nil && ready > 0)
                ? (anonAfter! - anonBefore!) / ready : nil,
            minPingsAnswered: pings.min() ?? 0,
            latencyPercentilesMicroseconds: Self.percentiles.map { [$0, us($0)] },
            errors: Dictionary(uniqueKeysWithValues: ErrorClass.allCases.map { ($0, errors[$0] ?? 0) }),
            handshakeStatuses: statuses, peerCloseCodes: codes,
            series: series,
            threads: benches.count,
            scenario: config.scenario.rawValue,
            pubsub: config.scenario == .pubsub ? PubSubFigures(benches) : nil,
            interrupted: benches.contains { $0.interrupted },
            stages: stageFigures(benches)
        )
    }
}
