import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@main
struct WSBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-bench",
        abstract: "A WebSocket load generator: N connections, K messages in flight, every echo verified.")

    @Option(help: "Server URL, ws://127.0.0.1:PORT/ws or wss:// (loopback only; the certificate is not checked).") var url: String
    @Option(help: "Connections to open.") var connections = 100
    @Option(help: "Payload bytes per message.") var size = 16
    @Option(help: "Messages in flight per connection (closed loop).") var inFlight = 1
    @Option(help: "Seconds to measure (or, with --idle, to hold).") var duration = 10.0
    @Option(help: "Seconds of load before measuring.") var warmup = 2.0
    @Option(help: "Fixed total rate in messages per second (open loop, for latency).") var rate: Double?
    @Flag(help: "Send text messages (printable ASCII) instead of binary.") var text = false
    @Flag(help: "Raw TCP echo: no handshake, no framing (the ceiling).") var raw = false
    @Flag(help: "Open the connections and hold them, answering pings.") var idle = false
    @Option(help: "Spread connections over 127.0.0.1...127.0.0.N.") var sourceAddresses = 1
    @Option(help: "PID of the server, to count its CPU time and RSS.") var serverPid: Int32?
    @Option(help: "Seed of the payload pattern.") var seed: UInt64 = 1
    @Option(help: "Write the report as JSON to this file.") var json: String?
    @Flag(help: "Only the final report.") var quiet = false
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
        let authority = url.hasPrefix("wss://") ? url.dropFirst(6) : url.hasPrefix("ws://") ? url.dropFirst(5) : ""
        guard authority.hasPrefix("127.") || authority.hasPrefix("localhost") else {
            throw ValidationError("load goes to the loopback range only (ws:// or wss:// to 127.x.x.x or localhost)")
        }
        if raw && url.hasPrefix("wss://") { throw ValidationError("--raw is plain TCP") }
        if size < 0 { throw ValidationError("--size must not be negative") }
        if connections < 1 { throw ValidationError("--connections must be at least 1") }
        if inFlight < 1 { throw ValidationError("--in-flight must be at least 1") }
        if !(duration > 0 && duration <= 3600) { throw ValidationError("--duration must be in (0, 3600]") }
        if raw && size == 0 { throw ValidationError("--raw needs --size > 0") }
        if publish && (raw || idle || rate != nil) { throw ValidationError("--publish is closed-loop WebSocket load") }
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
        raiseOpenFileLimit()
        let config = BenchConfig(host: host, port: port, path: path, connections: connections, size: size,
                                 inFlight: inFlight, duration: duration, warmup: warmup, rate: rate, text: text,
                                 raw: raw, idle: idle, sourceAddresses: sourceAddresses, serverPID: serverPid,
                                 seed: seed, quiet: quiet,
                                 compression: compressionNoContext ? true : (compression ? false : nil),
                                 json: jsonPayload, idleMessage: idleMessage, sendUncompressed: sendUncompressed,
                                 secure: secure, publish: publish, receiveOnly: receiveOnly)
        let bench = try Bench(config: config)
        let report = try bench.run()
        print(report.printed(idle: idle))
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: json))
        }
        if report.mismatches > 0 || report.failed > 0 || (expectPings && report.minPingsAnswered < 1) {
            throw ExitCode(1)
        }
    }

    func raiseOpenFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
