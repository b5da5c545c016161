import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import WebSocketBackplane
import WebSocketServer

/// The chat sample: rooms on topics, across servers through Redis.
@main
struct ChatServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-server",
        abstract: "Serves the chat sample: the page at / and rooms at /ws?room=NAME&name=NAME, shared with other servers through --redis."
    )

    @Option(help: "Address to listen on.")
    var host = "localhost"

    @Option(help: "Port to listen on.")
    var port = 5001

    @Option(help: "Event loops, each on a thread of its own.")
    var loops = 1

    @Option(help: "A Redis server shared with other chat servers: redis://[[user]:password@]HOST[:PORT][/DB]. Without it, rooms stay on this server.")
    var redis: String?

    @Flag(help: "With --redis: Redis 7 sharded pub/sub (SPUBLISH/SSUBSCRIBE), the form Redis Cluster spreads over its shards.")
    var sharded = false

    @Option(help: "Directory served for paths other than /ws (default: the bundled chat page).")
    var staticRoot: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (1...WebSocketServerGroup<ChatHandler>.maxLoops).contains(loops) else {
            throw ValidationError("--loops must be 1...\(WebSocketServerGroup<ChatHandler>.maxLoops)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \(logLevel)") }
        if let redis { do { _ = try RedisURL(parsing: redis) } catch { throw ValidationError("--redis: \(error)") } }
    }

    func run() async throws {
        do {
            try await serve()
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    func serve() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "chat-server")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

        var options = WebSocketOptions()
        // A chat line, not a file.
        options.maxMessageSize = 64 * 1024
        options.keepAliveInterval = .seconds(30)
        options.keepAliveTimeout = .seconds(30)
        let group = try WebSocketServerGroup(loops: loops, options: options, logger: logger) { _ in ChatHandler() }
        group.route(webSocket: "/ws") { request in
            if let problem = ChatNotice.roomProblem(request.queryItem("room")) {
                return .refuse(status: 400, reason: problem)
            }
            guard let name = ChatNotice.name(request.queryItem("name")) else {
                return .refuse(status: 400, reason: "malformed name: 1 to 32 characters, no control characters")
            }
            return .accept(data: ChatMember(name: name, room: request.queryItem("room")!))
        }
        if let redis {
            var backplaneLogger = logger
            backplaneLogger[metadataKey: "component"] = "redis"
            let backplane = try RedisBackplane(url: RedisURL(parsing: redis), sharded: sharded, logger: backplaneLogger)
            group.use(backplane: backplane)
        }
        guard let root = staticRoot ?? Bundle.module.url(forResource: "Public", withExtension: nil)?.path else {
            throw MissingPage()
        }
        try group.serveFiles(from: root)
        let bound = try group.listen(host: host, port: port)
        // Scripts and tests wait for this line.
        print("listening on http://\(host):\(bound)")
        // Every stream, so that the line is out before the loop runs.
        fflush(nil)
        // SIGTERM and SIGINT: the service group's graceful shutdown, ours.
        let services = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: group)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
    }

    struct MissingPage: Error, CustomStringConvertible {
        var description: String { "the bundled page is missing from the build; pass --static-root" }
    }
}
