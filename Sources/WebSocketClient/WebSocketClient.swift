import Logging
import TLSKit
import UVKit
import WebSocketCore
import WebSocketRuntime

/// Opens WebSocket connections to servers: `connect(to: "ws://host:port/path")`
/// or `"wss://..."` (TLS, verified against `options.tls.trust`)
/// gives a `WebSocketConnection`, the same type a server's handler gets, driven
/// by the same handler shape, so the same handler code can serve both roles.
///
/// A client runs on a loop: its own (call `run()`), or one it shares with a
/// server or other clients (run that loop; the loop's receive ring, cork and
/// wheel are shared). Every call and callback is on the loop's thread; calls
/// check it and trap with the rule's name.
///
/// Keep the client for as long as its connections should live. Released at
/// any time (in one of its own callbacks too), it does not crash or hang:
/// connects still under way fail with `.clientShutDown`; open connections
/// are dropped (1006 to the handler) when the loop is the client's own,
/// which nobody runs after it, and get the closing handshake (1001) on a
/// shared loop, which goes on.
public final class WebSocketClient<Handler: WebSocketHandler> {
    /// The loop the client runs on: its own, or a server's it shares.
    public let loop: EventLoop
    /// The options it was made with, validated.
    public let options: WebSocketClientOptions
    /// The handler its connections call (on the loop thread).
    public let handler: Handler
    let endpoint: Endpoint<Handler>
    private let ownsLoop: Bool
    private var loopClosed = false
    private var ran = false
    private var finished = false
    private var shuttingDown = false

    /// What a connection attempt still needs: whom to tell, and the addresses
    /// left to try when one refuses.
    private struct Attempt {
        var url: WebSocketURL
        var source: SocketAddress?
        var addresses: ArraySlice<SocketAddress>
        var completion: ((Result<WebSocketConnection<Handler>, WebSocketClientError>) -> Void)?
        var lastError: WebSocketClientError?
    }
    /// Every connection from its TCP connect to its close callback, held here.
    private var connections: [ObjectIdentifier: WebSocketConnection<Handler>] = [:]
    private var attempts: [ObjectIdentifier: Attempt] = [:]
    /// For `wss://`, made by the first such connect from `options.tls`.
    private var tlsContext: TLSContext?
    /// Run once no connection is left (`whenIdle`).
    private var idleWaiters: [() -> Void] = []

    /// Counters, updated on the loop thread.
    public var metrics: WebSocketMetrics { endpoint.metrics }

    /// At debug level, every connection's open and close (with its code),
    /// keep-alive timeouts and backpressure pauses.
    public var logger: Logger {
        get { endpoint.logger }
        set { endpoint.logger = newValue }
    }

    /// A client, not yet connected. Throws `WebSocketClientError.invalidOptions`
    /// for an option out of range.
    ///
    /// - Parameters:
    ///   - handler: called for every connection's events, on the loop thread.
    ///   - options: validated here.
    ///   - loop: the loop to run on; by default the client makes its own,
    ///     which `run()` runs and closes.
    ///   - logger: where connection events go at debug level.
    public init(handler: Handler, options: WebSocketClientOptions = WebSocketClientOptions(),
                loop: EventLoop? = nil,
                logger: Logger = Logger(label: "UVWebSocket.client")) throws(WebSocketClientError) {
        if let problem = options.validationError() { throw .invalidOptions(problem) }
        self.options = options
        self.handler = handler
        ownsLoop = loop == nil
        do { self.loop = try loop ?? EventLoop() } catch { throw .invalidOptions("cannot create a loop: \(error)") }
        let settings = options.connectionSettings
        let context = LoopContext.acquire(on: self.loop, receiveBufferSize: options.receiveBufferSize,
                                          granularity: settings.wheelGranularity)
        endpoint = Endpoint(handler: handler, context: context, settings: settings, logger: logger,
                            compression: options.compression, extensions: options.extensions)
        endpoint.owner = self
        // Weak: a connection can outlive its client (see the type's notes).
        endpoint.connectFinished = { [weak self] connection, error in self?.connectFinished(connection, error) }
        endpoint.httpPhaseEnded = { [weak self] connection, outcome in
            guard let self else { return connection.abortHTTP() }
            responseArrived(connection, outcome)
        }
        endpoint.connectionClosed = { [weak self] connection in self?.connectionDidClose(connection) }
    }

    deinit {
        let pending = attempts.values.compactMap(\.completion)
        attempts.removeAll()
        for connection in connections.values {
            if !ownsLoop && connection.isOpen {
                connection.close(code: .goingAway, reason: "client released")
            } else {
                connection.abort()
            }
        }
        for completion in pending { completion(.failure(.clientShutDown)) }
        finish()
        if ownsLoop && !loopClosed { try? loop.close() }
    }

    /// The open connections and those still connecting.
    public var connectionCount: Int { connections.count }

    /// Connects to a `ws://` or `wss://` URL. `completion` runs once, on the loop thread:
    /// with the open connection (after the handler's `didOpen`), or with the
    /// reason it did not open. A malformed URL is reported before this returns.
    ///
    /// - Parameters:
    ///   - url: `ws://` or `wss://`, with a host name or address and an optional port and path.
    ///   - sourceAddress: a local address to connect from (a numeric
    ///     IP), to spread many connections over several loopback addresses.
    ///   - completion: the open connection or the reason it did not open.
    public func connect(to url: String, from sourceAddress: String? = nil,
                        _ completion: @escaping (Result<WebSocketConnection<Handler>, WebSocketClientError>) -> Void) {
        loop.checkThread("WebSocketClient.connect")
        if shuttingDown || finished || loopClosed {
            completion(.failure(.clientShutDown))
            return
        }
        var source: SocketAddress?
        if let sourceAddress {
            guard let address = try? SocketAddress(host: sourceAddress, port: 0) else {
                completion(.failure(.invalidOptions("source address \(sourceAddress) is not a numeric IP")))
                return
            }
            source = address
        }
        let parsed: WebSocketURL
        do {
            parsed = try WebSocketURL(parsing: url)
        } catch {
            switch error {
            case .malformed(let why): completion(.failure(.invalidURL(why)))
            case .unsupportedScheme(let scheme): completion(.failure(.unsupportedScheme(scheme)))
            }
            return
        }
        if parsed.secure && tlsContext == nil {
            do { tlsContext = try TLSContext.client(options.tls) } catch {
                completion(.failure(.tlsConfiguration("\(error)")))
                return
            }
        }
        // A numeric address needs no resolver.
        if let address = try? SocketAddress(host: parsed.host, port: parsed.port), parsed.host != "localhost" {
            start(Attempt(url: parsed, source: source, addresses: [address][...], completion: completion))
            return
        }
        AddressResolver.resolve(parsed.host, port: parsed.port, on: loop) { [weak self] result in
            guard let self, !shuttingDown else { return completion(.failure(.clientShutDown)) }
            switch result {
            case .failure(let error):
                completion(.failure(.hostNotFound(host: parsed.host, reason: error.description)))
            case .success(let addresses) where addresses.isEmpty:
                completion(.failure(.hostNotFound(host: parsed.host, reason: "no address")))
            case .success(let addresses):
                start(Attempt(url: parsed, source: source, addresses: addresses[...], completion: completion))
            }
        }
    }

    /// Runs `body` on the loop thread once no connection is left, its socket
    /// closed too, not only its closing handshake done (at once if none is
    /// open). A peer that records a session when the TCP connection ends, as
    /// Autobahn|Testsuite's fuzzing server does, has then seen the end.
    public func whenIdle(_ body: @escaping () -> Void) {
        loop.checkThread("WebSocketClient.whenIdle")
        if connections.isEmpty {
            body()
        } else {
            idleWaiters.append(body)
        }
    }

    /// Runs the client's own loop until every connection has closed, then
    /// closes the loop. With a shared loop, run that loop instead: this
    /// throws `WebSocketClientError.notRunnable`, as does a second call.
    /// `loop.stop()` (from a handler, say) ends it too: connections still
    /// open get 1001 and are dropped, and `run()` returns once their handles
    /// have closed.
    public func run() throws {
        guard ownsLoop else {
            throw WebSocketClientError.notRunnable("run() runs the client's own loop; run the shared loop instead")
        }
        if ran { throw WebSocketClientError.notRunnable("run() was already called; a client runs its loop once") }
        ran = true
        if loop.run() || !connections.isEmpty {
            shutdown()
            for connection in Array(connections.values) { connection.abort() }
            while !connections.isEmpty && loop.run() {}
        }
        finish()
        loopClosed = true
        try loop.close()
    }

    /// Closes every connection with `code` (the closing handshake, within the
    /// close timeout), drops those still connecting, and once the last has
    /// closed gives back this client's share of the loop's state. With a
    /// shared loop, call it and keep running the loop until it has finished.
    public func shutdown(code: CloseCode = .goingAway, reason: String = "") {
        loop.checkThread("WebSocketClient.shutdown")
        shuttingDown = true
        for connection in Array(connections.values) {
            if connection.isOpen { connection.close(code: code, reason: reason) } else { connection.abort() }
        }
        if connections.isEmpty { finish() }
    }

    /// Gives back the loop's shared state; only once no connection is left.
    private func finish() {
        if finished { return }
        finished = true
        endpoint.context.release()
    }

    // MARK: Connecting

    private func start(_ attempt: Attempt) {
        var attempt = attempt
        guard let address = attempt.addresses.popFirst() else {
            attempt.completion?(.failure(attempt.lastError ?? .connectionRefused(host: attempt.url.host, port: attempt.url.port)))
            return
        }
        let connection = WebSocketConnection(endpoint: endpoint, tls: attempt.url.secure ? tlsContext : nil,
                                             serverName: attempt.url.host)
        let key = AcceptKey.makeKey()
        let request = ClientHandshake.request(host: attempt.url.hostHeader, path: attempt.url.target, key: key,
                                              subprotocols: options.subprotocols, origin: options.origin,
                                              extensions: endpoint.negotiators.flatMap { $0.offers() },
                                              extraHeaders: options.headers)
        let id = ObjectIdentifier(connection)
        connections[id] = connection
        attempts[id] = attempt
        connection.path = attempt.url.target
        do {
            try connection.connect(to: address, from: attempt.source, request: ClientHandshakeState(key: key, request: request))
        } catch {
            connectFinished(connection, error as? UVError ?? UVError(-1))
        }
    }

    private func connectFinished(_ connection: WebSocketConnection<Handler>, _ error: UVError?) {
        guard let error else { return }
        let id = ObjectIdentifier(connection)
        guard var attempt = attempts.removeValue(forKey: id) else { return }
        connection.abortHTTP()
        attempt.lastError = error == .connectionRefused
            ? .connectionRefused(host: attempt.url.host, port: attempt.url.port)
            : .connectFailed(host: attempt.url.host, port: attempt.url.port, reason: error.description)
        // The next address, if the name had several (::1 refused, 127.0.0.1 listening).
        start(attempt)
    }

    private func responseArrived(_ connection: WebSocketConnection<Handler>, _ outcome: HTTPPhaseOutcome) {
        guard let attempt = attempts.removeValue(forKey: ObjectIdentifier(connection)) else {
            connection.abortHTTP()
            return
        }
        let completion = attempt.completion
        switch outcome {
        case .timedOut:
            connection.abortHTTP()
            completion?(.failure(.handshakeTimeout))
        case .connectionLost:
            connection.abortHTTP()
            completion?(.failure(.connectionClosedDuringHandshake))
        case .tlsFailed(.untrustedCertificate(let why)):
            connection.abortHTTP()
            completion?(.failure(.certificateUntrusted(why)))
        case .tlsFailed(.hostnameMismatch(let why)):
            connection.abortHTTP()
            completion?(.failure(.hostnameMismatch(host: attempt.url.host, reason: why)))
        case .tlsFailed(.handshakeFailed(let why)):
            connection.abortHTTP()
            completion?(.failure(.tlsHandshakeFailed(why)))
        case .malformed(let error):
            connection.abortHTTP()
            completion?(.failure(.invalidHandshakeResponse("malformed response head (\(error))")))
        case .head(let head, let length):
            guard let state = connection.clientHandshake else {
                connection.abortHTTP()
                completion?(.failure(.invalidHandshakeResponse("no handshake in progress")))
                return
            }
            if head.startLine.1 != "101" {
                // Copied before the head buffer (which the view points into) is freed.
                let body = String(decoding: connection.headBytes(from: length).prefix(512), as: UTF8.self)
                connection.abortHTTP()
                completion?(.failure(.handshakeRejected(status: Int(head.startLine.1) ?? 0, body: body)))
                return
            }
            switch ClientHandshake.validate(head, key: state.key, offered: options.subprotocols,
                                            extensions: endpoint.negotiators) {
            case .failure(let error):
                connection.abortHTTP()
                completion?(.failure(.invalidHandshakeResponse("\(error)")))
            case .success(let agreement):
                connection.openWebSocket(headLength: length, subprotocol: agreement.subprotocol,
                                         messageExtension: agreement.messageExtension)
                completion?(.success(connection))
            }
        }
    }

    private func connectionDidClose(_ connection: WebSocketConnection<Handler>) {
        let id = ObjectIdentifier(connection)
        connections[id] = nil
        if let attempt = attempts.removeValue(forKey: id) {
            attempt.completion?(.failure(.connectionClosedDuringHandshake))
        }
        if connections.isEmpty && !idleWaiters.isEmpty {
            let waiters = idleWaiters
            idleWaiters.removeAll()
            for body in waiters { body() }
        }
        if shuttingDown && connections.isEmpty { finish() }
    }
}

extension WebSocketConnection {
    /// The client this connection belongs to; nil for a server's.
    public var client: WebSocketClient<Handler>? { owner as? WebSocketClient<Handler> }
}

@available(*, unavailable)
extension WebSocketClient: Sendable {}
