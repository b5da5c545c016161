import WebSocketCore

/// The answer to a plain HTTP request on one of the application's own paths
/// (`route(http:respond:)`): a small, whole response such as a health check
/// or a metrics scrape. It ends its connection (`Connection: close`); the
/// static files are the keep-alive path.
public struct HTTPReply: Sendable {
    /// 200 to 599.
    public var status: Int
    /// The `Content-Type` value.
    public var contentType: String
    /// The whole body (omitted, with its length kept, for a HEAD request).
    public var body: [UInt8]
    /// Extra header lines, `Name: value` each, without the line ends.
    public var headers: [String]

    /// A reply with `body` as it is.
    public init(status: Int = 200, contentType: String = "text/plain; charset=utf-8", body: [UInt8] = [],
                headers: [String] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    /// A text body in UTF-8.
    public init(status: Int = 200, contentType: String = "text/plain; charset=utf-8", text: String, headers: [String] = []) {
        self.init(status: status, contentType: contentType, body: Array(text.utf8), headers: headers)
    }

    /// Whether the reply can go on the wire as it is: a status the server may
    /// send and header lines that cannot split the head.
    var isValid: Bool {
        (200...599).contains(status) && HTTPFieldRules.isValidValue(contentType)
            && headers.allSatisfy(HTTPFieldRules.isValidFieldLine)
    }
}

/// Answers a plain HTTP request, on the loop thread that read it.
public typealias HTTPResponder = (HTTPHead) -> HTTPReply

extension WebSocketServer {
    /// Answers plain HTTP requests on `path` (without its query) with
    /// `respond`, before the static files. GET and HEAD reach it; other
    /// methods get 405. A reply with an invalid status or header is logged
    /// and answered with 500.
    public func route(http path: String, respond: @escaping HTTPResponder) {
        loop.checkThread("WebSocketServer.route")
        httpRoutes[path] = respond
    }

    func answer(_ connection: WebSocketConnection<Handler>, _ request: HTTPHead, path: String, with respond: HTTPResponder) {
        let method = request.startLine.0
        guard method == "GET" || method == "HEAD" else {
            reject(connection, 405, "this path answers GET and HEAD", extraHeaders: ["Allow: GET, HEAD"], detail: path)
            return
        }
        let reply = respond(request)
        guard reply.isValid else {
            logger.error("an HTTP route's reply is invalid", metadata: ["path": "\(path)", "status": "\(reply.status)"])
            reject(connection, 500, "the route's reply is invalid", detail: path)
            return
        }
        var response = HTTPResponse.make(status: reply.status, contentType: reply.contentType, body: reply.body,
                                         extraHeaders: reply.headers)
        if method == "HEAD" { response.removeLast(reply.body.count) }
        connection.respondAndClose(response)
    }
}

extension WebSocketServerGroup {
    /// `WebSocketServer.route(http:respond:)` on every loop: `respond` is
    /// called on the loop that read the request, so from several threads.
    public func route(http path: String, respond: @escaping @Sendable (HTTPHead) -> HTTPReply) {
        for server in servers { server.route(http: path, respond: respond) }
    }
}
