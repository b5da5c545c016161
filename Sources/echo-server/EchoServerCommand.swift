import ArgumentParser
import CoreMetrics
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import WebSocketAsync
import WebSocketServer
#if canImport(Glibc)
import Glibc
#endif

/// The sample app: the article's echo server and test page.
@main
struct EchoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "Serves the WebSocket echo sample: the test page at / and the echo at /ws."
    )

    @Option(help: "Address to listen on.")
    var host = "localhost"

    @Option(help: "Port to listen on.")
    var port = 5000

    @Option(help: "Seconds between keep-alive pings to a quiet peer (0 turns them off; fractions allowed).")
    var keepAliveInterval: Double = 120

    @Option(help: "Seconds to wait for a pong after a ping before closing with 1011 (0: wait forever).")
    var keepAliveTimeout: Double = 0

    @Option(help: "Receive buffer size in bytes: how much one read takes in (the loop's ring; a power of two, at least 256).")
    var receiveBufferSize = 65536

    @Option(help: "Largest message in bytes, over all its fragments (1009 past it).")
    var maxMessageSize = 16 * 1024 * 1024

    @Option(help: "Bytes queued for a slow peer before the server stops reading from it.")
    var maxBackpressure = 1024 * 1024

    @Option(help: "Seconds a client has to send its request head.")
    var handshakeTimeout: Double = 10

    @Option(help: "Seconds to wait for the close handshakes on shutdown.")
    var drainTimeout: Double = 5

    @Option(help: "Open connections past which new ones get 503 (0: no limit).")
    var maxConnections = 0

    @Option(name: .customLong("allowed-origin"), help: "An Origin allowed to connect (repeatable; none: all).")
    var allowedOrigins: [String] = []

    @Option(name: .customLong("subprotocol"), help: "A subprotocol the server speaks (repeatable).")
    var subprotocols: [String] = []

    @Option(help: "Directory served for paths other than /ws (default: the bundled sample page).")
    var staticRoot: String?

    @Flag(help: "Negotiate permessage-deflate (RFC 7692) with clients that offer it; the echo answers compressed, every message however small (minimumSize 0).")
    var compression = false

    @Option(help: "With --compression: zlib level 0-9.")
    var compressionLevel = 6

    @Option(help: "Event loops, each on a thread of its own (one per core uses every core; see `nproc`).")
    var loops = 1

    @Option(help: "With several loops, how connections reach them: reuse-port (each loop listens, the kernel spreads) or round-robin (loop 0 accepts and hands them out in turn).")
    var accept = "reuse-port"

    @Option(help: "TLS: the certificate chain (PEM, leaf first). With --tls-key, the server speaks https:// and wss:// only; SIGHUP reloads both files.")
    var tlsCert: String?

    @Option(help: "TLS: the certificate's private key (PEM).")
    var tlsKey: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Flag(name: .customLong("async"), help: "Echo through the async/await face (a task per connection iterating its messages) instead of the loop-thread callbacks.")
    var asyncEcho = false

    @Flag(help: "Serve the server's counters at /metrics in Prometheus' text format (swift-metrics through swift-prometheus).")
    var metrics = false

    func validate() throws {
        for (name, value) in [("keep-alive-interval", keepAliveInterval), ("keep-alive-timeout", keepAliveTimeout),
                              ("handshake-timeout", handshakeTimeout), ("drain-timeout", drainTimeout)]
        where !(value >= 0 && value.isFinite) {
            throw ValidationError("--\(name) must be a non-negative number of seconds")
        }
        if receiveBufferSize < 256 || receiveBufferSize & (receiveBufferSize - 1) != 0 {
            throw ValidationError("--receive-buffer-size must be a power of two of at least 256")
        }
        if maxMessageSize <= 0 { throw ValidationError("--max-message-size must be positive") }
        if maxBackpressure <= 0 { throw ValidationError("--max-backpressure must be positive") }
        if port < 0 || port > 65535 { throw ValidationError("--port must be 0...65535") }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level \(logLevel) is not a level") }
        if loops < 1 || loops > 1024 { throw ValidationError("--loops must be 1...1024") }
        if !(0...9).contains(compressionLevel) { throw ValidationError("--compression-level must be 0...9") }
        if maxConnections < 0 { throw ValidationError("--max-connections must not be negative") }
        if !["reuse-port", "round-robin"].contains(accept) {
            throw ValidationError("--accept must be reuse-port or round-robin")
        }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    var distribution: ConnectionDistribution { accept == "round-robin" ? .roundRobin : .reusePort }

    // Not an async main: on Linux that ends the main thread in Dispatch's
    // signal wait, which valgrind cannot run (`make bench-instructions`
    // counts this binary's instructions under callgrind). The service group
    // runs in a task instead, and the main thread, not one of the pool's,
    // waits for it.
    func run() throws {
        let outcome = Outcome()
        Task {
            do { try await serve() } catch { outcome.error = error }
            outcome.done.signal()
        }
        outcome.done.wait()
        do {
            if let error = outcome.error { throw error }
        } catch {
            // A start-up failure is one line naming its cause (the server's
            // errors describe themselves) and exit status 1, not a backtrace;
            // bad flags never get here (usage, status 64).
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    func serve() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "echo-server")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

        var options = WebSocketOptions()
        options.keepAliveInterval = .milliseconds(Int64(keepAliveInterval * 1000))
        options.keepAliveTimeout = .milliseconds(Int64(keepAliveTimeout * 1000))
        options.receiveBufferSize = receiveBufferSize
        options.maxMessageSize = maxMessageSize
        options.maxBackpressure = maxBackpressure
        options.handshakeTimeout = .milliseconds(Int64(handshakeTimeout * 1000))
        options.maxConnections = maxConnections
        options.allowedOrigins = allowedOrigins
        options.subprotocols = subprotocols
        if compression {
            var deflate = CompressionOptions()
            deflate.level = compressionLevel
            // The sample mirrors its peer: every message is answered
            // compressed, however small.
            deflate.minimumSize = 0
            options.compression = deflate
        }

        if let tlsCert, let tlsKey {
            options.tls = TLSServerConfiguration(certificate: TLSCertificateFiles(chain: tlsCert, privateKey: tlsKey))
        }

        let registry = metrics ? PrometheusCollectorRegistry() : nil
        if let registry { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }

        raiseOpenFileLimit()
        if asyncEcho {
            // The async face's buffers are bounded as the callback echo's
            // queue is: by --max-backpressure.
            let handler = try AsyncEcho.handler(limit: maxBackpressure)
            try await serve(WebSocketServerGroup(loops: loops, options: options,
                                                 distribution: distribution,
                                                 logger: logger, sharedHandler: handler),
                            registry: registry, logger: logger)
        } else {
            try await serve(WebSocketServerGroup(loops: loops, options: options,
                                                 distribution: distribution,
                                                 logger: logger) { _ in EchoHandler() },
                            registry: registry, logger: logger)
        }
    }

    /// Routes, files, the listening socket and the service group, whichever
    /// the handler.
    func serve<Handler>(_ server: WebSocketServerGroup<Handler>, registry: PrometheusCollectorRegistry?,
                        logger: Logger) async throws {
        server.route(webSocket: "/ws")
        guard let root = staticRoot ?? Bundle.module.url(forResource: "Public", withExtension: nil)?.path else {
            throw MissingPage()
        }
        if let registry {
            server.route(http: "/metrics") { _ in
                HTTPReply(contentType: "text/plain; version=0.0.4; charset=utf-8", body: registry.emitToBuffer())
            }
        }
        try server.serveFiles(from: root)
        let bound = try server.listen(host: host, port: port)
        server.drainTimeout = .milliseconds(Int64(drainTimeout * 1000))
        if tlsCert != nil { try server.reloadCertificatesOnHangUp() }
        // Scripts and tests wait for this line.
        print("listening on \(tlsCert == nil ? "http" : "https")://\(host):\(bound)")
        // Every stream, so that the line is out before the loop runs.
        fflush(nil)
        // SIGTERM and SIGINT reach the server as the service group's graceful
        // shutdown: 1001 to every peer, the drain, then exit status 0.
        let services = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
    }

    /// The task's end, for the main thread: `error` is written before
    /// `done` is signalled and read after the wait, which orders the two.
    final class Outcome: @unchecked Sendable {
        var error: Error?
        let done = DispatchSemaphore(value: 0)
    }

    struct MissingPage: Error, CustomStringConvertible {
        var description: String { "the bundled page is missing from the build; pass --static-root" }
    }

    /// One descriptor per connection: take the whole hard limit, as servers do
    /// (the soft limit is often 1024).
    func raiseOpenFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
