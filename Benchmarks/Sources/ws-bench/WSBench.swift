import ArgumentParser
import Foundation
import UVKit
#if canImport(Glibc)
import Glibc
#endif

/// `ws-bench` runs a load (`run`, the default) or compares two reports.
@main
struct WSBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-bench",
        abstract: "A WebSocket load generator, and a comparison of its reports.",
        subcommands: [WSBench.self, Compare.self],
        defaultSubcommand: WSBench.self)
}

struct WSBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "A WebSocket load: N connections, K messages in flight or a fixed rate, every echo verified.")

    @Option(help: "Server URL, ws:// or wss://, any host (names resolve through DNS; wss:// certificates are verified against the system's authorities).") var url: String
    @Option(help: "wss://: trust the authorities in this PEM file instead of the system's.") var caFile: String?
    @Flag(help: "wss://: accept any certificate (a test server's own, say); the traffic is then not authenticated.") var insecure = false
    @Option(name: .customLong("header"), help: "A request header for the handshake, 'Name: value' (repeatable).") var headers: [String] = []
    @Option(name: .customLong("subprotocol"), help: "A subprotocol to offer (repeatable).") var subprotocols: [String] = []
    @Option(help: "Write the per-second series as CSV to this file.") var csv: String?
    @Option(help: "Write an HTML report (index.html: rate and p99 over time, the latency distribution, percentiles; no network needed to view it) into this folder.") var report: String?
    @Option(help: "Loops, each on a thread of its own with its share of the connections (and of --rate); the results merge exactly (histograms added).") var threads = 1
    @Option(help: "echo (every byte of every echo checked), request (send --template or --payload-file, time the first reply to each), connect (open, close with 1000, again: handshakes per second and their latency), pubsub (--publishers publish at --rate to a server that sends each message to every connection; delivery latency and loss per connection), idle (as --idle).")
    var scenario = "echo"
    @Option(help: "pubsub: how many connections publish (the rest only receive).") var publishers = 1
    @Option(help: "The request scenario's text payload; {{counter}} becomes 1, 2, 3, ... per loop.") var template: String?
    @Option(help: "The request scenario's payload from a file (UTF-8 text; {{counter}} as in --template).") var payloadFile: String?
    @Option(name: .customLong("connections"), help: "Connections to open (with connect: connections opening at once); 100 if not given.")
    var connectionsOption: Int?
    var connections: Int { connectionsOption ?? 100 }
    @Option(help: "Open the connections at this many a second (a ramp; the load starts once all are open), instead of at once. With --stage: the pace at which each stage reaches its count (a step), instead of evenly over the stage.")
    var connectRate: Double?
    @Option(name: .customLong("stage"), help: "A stage of a staged run, DURATION:CONNECTIONS[:RATE] such as 30s:1000conn:5000rps (repeatable, run in order; durations in ms, s or m). Over a stage the open connections move from the previous stage's count (0 at first) to its own, evenly or at --connect-rate; RATE is the open loop's messages a second (give it on every stage or on none: closed loop, --in-flight each). The whole plan is measured, stage by stage; no --duration, --warmup, --rate or --connections.")
    var stageTexts: [String] = []
    @Option(help: "Payload bytes per message.") var size = 16
    @Option(help: "Messages in flight per connection (closed loop).") var inFlight = 1
    @Option(help: "Seconds to measure (or, with --idle, to hold); 10 if not given.") var duration: Double?
    @Option(help: "Seconds a connection may take to open (TCP, TLS and the upgrade) before it counts as a timeout.")
    var handshakeTimeout = 60.0
    @Option(help: "Seconds of load before measuring; 2 if not given.") var warmup: Double?
    @Option(help: "Fixed total rate in messages per second (open loop, for latency).") var rate: Double?
    @Flag(help: "Send text messages (printable ASCII) instead of binary.") var text = false
    @Flag(help: "Raw TCP echo: no handshake, no framing (the ceiling).") var raw = false
    @Flag(help: "Open the connections and hold them, answering pings.") var idle = false
    @Option(help: "Spread connections over 127.0.0.1...127.0.0.N.") var sourceAddresses = 1
    @Option(help: "PID of the server, to count its CPU time and RSS.") var serverPid: Int32?
    @Option(help: "Seed of the payload pattern.") var seed: UInt64 = 1
    @Option(help: "Write the report as JSON to this file.") var json: String?
    @Flag(help: "Only the final report: no progress lines and no live line (shown on a terminal only).") var quiet = false
    @Flag(help: "Fan-out: the first connection publishes (closed loop on its own copy, --in-flight at a time) and every connection counts the copies it receives, checked byte for byte, for servers that send each message to every connection, the sender included.")
    var publish = false
    @Flag(help: "With --publish: no connection publishes here (another ws-bench publishes to a server these connections' server shares a backplane with); every connection counts what it receives.")
    var receiveOnly = false
    @Flag(help: "Offer permessage-deflate as browsers do (client_max_window_bits, both contexts kept); fail if refused.")
    var compression = false
    @Flag(help: "Offer permessage-deflate with no context takeover either way.") var compressionNoContext = false
    @Flag(help: "With compression: send uncompressed, so that the server compresses and this end only inflates (server-bound).")
    var sendUncompressed = false
    @Flag(help: "JSON-like text payloads (compressible), instead of random bytes.") var jsonPayload = false
    @Flag(help: "With --idle: every connection echoes one message before it idles.") var idleMessage = false
    @Flag(help: "Fail unless every connection answered at least one ping (with --idle).") var expectPings = false

    func validate() throws {
        guard url.hasPrefix("ws://") || url.hasPrefix("wss://") else { throw ValidationError("--url must be ws:// or wss://") }
        if raw && url.hasPrefix("wss://") { throw ValidationError("--raw is plain TCP") }
        guard let kind = Scenario(rawValue: scenario) else {
            throw ValidationError("--scenario must be one of \(Scenario.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if kind == .request && (template == nil) == (payloadFile == nil) {
            throw ValidationError("--scenario request takes --template or --payload-file (one of them)")
        }
        if kind != .request && (template != nil || payloadFile != nil) {
            throw ValidationError("--template and --payload-file go with --scenario request")
        }
        if (kind == .connect || kind == .request) && (raw || publish || idle) {
            throw ValidationError("--scenario \(scenario) is not --raw, --publish or --idle")
        }
        // Before anything divides by it.
        if threads < 1 || threads > 64 { throw ValidationError("--threads must be 1...64") }
        if kind == .pubsub && (rate == nil || publishers < 1 || publishers > connections / threads) {
            throw ValidationError("--scenario pubsub takes --rate and 1...connections/threads --publishers")
        }
        if connections % threads != 0 { throw ValidationError("--connections must be a multiple of --threads") }
        if publish && threads > 1 { throw ValidationError("--publish runs on one thread") }
        if insecure && caFile != nil { throw ValidationError("--insecure and --ca-file exclude each other") }
        for header in headers where !header.contains(":") {
            throw ValidationError("--header \(header.debugDescription) is not 'Name: value'")
        }
        // Bounds on everything that sizes an allocation or becomes a timer's
        // milliseconds: a typo must give a usage error, not a trap.
        if let rate, !(rate > 0 && rate <= 1e9) { throw ValidationError("--rate must be in (0, 1e9] messages per second") }
        try validateStages()
        if !(warmupSeconds >= 0 && warmupSeconds <= 3600) { throw ValidationError("--warmup must be in [0, 3600] seconds") }
        if size > 64 << 20 { throw ValidationError("--size must be at most 64 MiB") }
        if inFlight > 65536 { throw ValidationError("--in-flight must be at most 65536") }
        if connections > 1_000_000 { throw ValidationError("--connections must be at most 1,000,000") }
        if !(handshakeTimeout > 0 && handshakeTimeout <= 3600) { throw ValidationError("--handshake-timeout must be in (0, 3600] seconds") }
        if sourceAddresses < 1 || sourceAddresses > 254 { throw ValidationError("--source-addresses must be 1...254") }
        if size < 0 { throw ValidationError("--size must not be negative") }
        if connections < 1 { throw ValidationError("--connections must be at least 1") }
        if inFlight < 1 { throw ValidationError("--in-flight must be at least 1") }
        if !(measuredSeconds > 0 && measuredSeconds <= 3600) { throw ValidationError("--duration must be in (0, 3600]") }
        if raw && size == 0 { throw ValidationError("--raw needs --size > 0") }
        if publish && (raw || idle || rate != nil) { throw ValidationError("--publish is closed-loop WebSocket load") }
    }

    var measuredSeconds: Double { duration ?? 10 }
    var warmupSeconds: Double { warmup ?? 2 }

    /// --stage and --connect-rate: the plan is whole and consistent.
    func validateStages() throws {
        if let connectRate, !(connectRate > 0 && connectRate <= 1e6) {
            throw ValidationError("--connect-rate must be in (0, 1e6] connections per second")
        }
        if connectRate != nil && scenario == "connect" { throw ValidationError("--connect-rate does not go with --scenario connect") }
        if stageTexts.isEmpty { return }
        let stages = try stageTexts.map { text in
            do { return try Stage(parsing: text) } catch { throw ValidationError("\(error)") }
        }
        if !["echo", "request"].contains(scenario) || raw || idle || publish {
            throw ValidationError("--stage runs the echo or request scenario (not --raw, --idle or --publish)")
        }
        if duration != nil || warmup != nil || rate != nil || connectionsOption != nil {
            throw ValidationError("--stage plans the whole run: no --duration, --warmup, --rate or --connections")
        }
        if Set(stages.map { $0.rate == nil }).count > 1 {
            throw ValidationError("--stage: give a rate on every stage (open loop) or on none (closed loop)")
        }
        if stages.contains(where: { $0.connections % threads != 0 }) {
            throw ValidationError("--stage: each stage's connections must be a multiple of --threads")
        }
        if stages.reduce(0, { $0 + $1.seconds }) > 3600 { throw ValidationError("--stage: the plan must be at most an hour") }
    }

    func run() throws {
        let secure = url.hasPrefix("wss://")
        var rest = Substring(url.dropFirst(secure ? "wss://".count : "ws://".count))
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash < rest.endIndex ? String(rest[slash...]) : "/"
        rest = authority
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
            throw ValidationError("--url needs a port")
        }
        let host = String(rest[..<colon]) == "localhost" ? "127.0.0.1" : String(rest[..<colon])
        if raw || sourceAddresses > 1, (try? SocketAddress(host: host, port: port)) == nil {
            throw ValidationError("--raw and --source-addresses need a numeric address in --url")
        }
        raiseOpenFileLimit()
        var config = BenchConfig(host: host, port: port, path: path, connections: connections / threads, size: size,
                                 inFlight: inFlight, duration: measuredSeconds, warmup: warmupSeconds, rate: rate, text: text,
                                 raw: raw, idle: idle, sourceAddresses: sourceAddresses, serverPID: serverPid,
                                 seed: seed, quiet: quiet,
                                 compression: compressionNoContext ? true : (compression ? false : nil),
                                 json: jsonPayload, idleMessage: idleMessage, sendUncompressed: sendUncompressed,
                                 secure: secure, publish: publish, receiveOnly: receiveOnly, url: url,
                                 trust: insecure ? .acceptAnyCertificate : caFile.map { .certificateAuthorities(file: $0) } ?? .system,
                                 headers: headers, subprotocols: subprotocols)
        config.rate = rate.map { $0 / Double(threads) }
        config.handshakeTimeout = handshakeTimeout
        config.connectRate = connectRate.map { $0 / Double(threads) }
        config.stages = try stageTexts.map { try Stage(parsing: $0).share(of: threads) }
        if let first = config.stages.first {
            // The open loop or the closed one for the whole plan (validated alike on every stage).
            config.rate = first.rate
            config.connections = config.stages.map(\.connections).max() ?? 0
        }
        config.scenario = idle ? .idle : Scenario(rawValue: scenario) ?? .echo
        config.idle = config.scenario == .idle
        if let payloadFile {
            guard let text = try? String(contentsOfFile: payloadFile, encoding: .utf8) else {
                throw ValidationError("--payload-file \(payloadFile) cannot be read as UTF-8 text")
            }
            config.template = text
        } else {
            config.template = template
        }
        let report = try runOnLoops(config)
        print(report.printed(idle: config.idle))
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: json))
        }
        if let csv { try report.seriesCSV().write(toFile: csv, atomically: true, encoding: .utf8) }
        if let folder = self.report {
            try HTMLReport.write(report, to: folder, command: CommandLine.arguments.joined(separator: " "))
        }
        // Any error, of any class, is a failed run (for CI).
        if report.mismatches > 0 || report.failed > 0 || report.errors.values.contains(where: { $0 > 0 })
            || (expectPings && report.minPingsAnswered < 1) {
            throw ExitCode(1)
        }
    }

    /// A Bench per loop, loop 0 on this thread and the others on threads of
    /// their own (each with its share of the connections and of the rate),
    /// and the merged report once all have ended.
    func runOnLoops(_ config: BenchConfig) throws -> Report {
        let coordinator = RunCoordinator(loops: threads, live: !quiet && isatty(STDOUT_FILENO) != 0)
        var benches: [Bench] = []
        for index in 0..<threads {
            var own = config
            // Different payload patterns per loop, the same each run.
            own.seed = config.seed &+ UInt64(index)
            own.loopIndex = index
            own.publishers = publishers
            // Loop 0 publishes at the whole rate.
            if own.scenario == .pubsub { own.rate = rate }
            benches.append(try Bench(config: own, coordinator: coordinator))
        }
        let failures = Lock<[String]>([])
        let others = try benches.dropFirst().enumerated().map { index, bench in
            let bound = LoopBound(bench)
            return try LoopThread(name: "ws-bench-\(index + 1)") {
                do { try bound.value.runLoop() } catch { failures.withLock { $0.append("\(error)") } }
            }
        }
        try benches[0].runLoop()
        for thread in others { thread.join() }
        if let failure = failures.withLock({ $0.first }) { throw ValidationError("a loop failed: \(failure)") }
        return Bench.report(benches)
    }

    func raiseOpenFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
