#if canImport(Glibc)
import Glibc
#endif
import UVKit
import WebSocketCore
import WebSocketRuntime

/// Answers the requests that are not WebSocket upgrades with files under the
/// root, as a web server would: persistent connections, validators and 304,
/// single byte ranges, HEAD, precompressed siblings. One per server (so one
/// per loop), used on its loop thread only.
///
/// The loop never waits for the disk: a file not in the memory cache is
/// found and opened on libuv's thread pool (`FileLookup`), and a large one is
/// read from there a piece at a time (`FileStream`).
final class FileResponder<Handler: WebSocketHandler> {
    let files: StaticFiles
    let loop: EventLoop
    /// For its counters (`fileResponses`, `fileResponsesKeptAlive`).
    private let endpoint: Endpoint<Handler>
    private let cache: FileCache
    private let maxBackpressure: Int
    /// Responses waiting for their connection's queue, by connection.
    private var streams: [ObjectIdentifier: FileStream<Handler>] = [:]
    /// The `Date` header, made once per second.
    private var dateSecond = -1
    private var dateLine: [UInt8] = []
    /// "Cache-Control: ...\r\n" as the options say (empty for none).
    private let cacheControlLine: [UInt8]
    /// Set by the server's shutdown: responses from then on close their connection.
    var shuttingDown = false

    init(files: StaticFiles, endpoint: Endpoint<Handler>, maxBackpressure: Int) {
        self.files = files
        self.endpoint = endpoint
        loop = endpoint.context.loop
        self.maxBackpressure = maxBackpressure
        cacheControlLine = files.options.cacheControl.map { Array("Cache-Control: \($0)\r\n".utf8) } ?? []
        cache = FileCache(capacity: files.options.memoryCacheSize,
                          revalidateAfter: files.options.revalidateAfter.milliseconds)
    }

    /// Answers one request head (`headLength` bytes at the front of the
    /// connection's buffer).
    func respond(_ connection: WebSocketConnection<Handler>, _ request: HTTPHead, headLength: Int) {
        let (method, target, version) = request.startLine
        let exchange = HTTPExchange(connection: connection, headLength: headLength,
                                    keepAlive: keepsAlive(connection, request, version: version),
                                    isHTTP10: version == "HTTP/1.0", headOnly: method == "HEAD")
        // RFC 9110 §15.5.6: 405 names the methods there are.
        guard method == "GET" || method == "HEAD" else {
            return sendError(exchange, 405, "only GET and HEAD", extraHeaders: ["Allow: GET, HEAD"])
        }
        let relative: String
        switch files.map(target: target) {
        case .error(let status):
            return sendError(exchange, status, status == 404 ? "no such file" : "bad path")
        case .path(let path):
            relative = path
        }
        let options = files.options
        let acceptsGzip = options.precompressed && Self.acceptsGzip(request)
        let path = target.prefix { $0 != "?" && $0 != "#" }
        let asFolder = path.hasSuffix("/")
        // A folder's page and the same name without the slash (a redirect)
        // are cached apart.
        let key = asFolder && !relative.isEmpty ? relative + "/" : relative
        if let entry = cache.fresh(key, now: loop.now) {
            return answer(exchange, request, identity: entry.identity, gzip: entry.gzip, contentType: entry.contentType,
                          acceptsGzip: acceptsGzip)
        }
        let lookup = FileLookup(root: files.root, relative: relative, asFolder: asFolder, lookForGzip: options.precompressed,
                                prefersGzip: acceptsGzip,
                                inlineLimit: options.memoryCacheSize > 0 ? options.memoryCacheFileLimit : 0)
        ThreadPoolWork.run(on: loop, { lookup.run() }, then: { [self] in
            // The connection may have gone while the pool worked.
            guard connection.isInHTTPPhase else { return lookup.closeDescriptors() }
            cache.store(key, lookup, now: loop.now)
            if lookup.status == 301 {
                // RFC 9110 §15.4.2. The location is made from the mapped
                // path, not echoed from the request ("//host" would send the
                // client to another site); the query goes along.
                let query = target.dropFirst(path.count)
                let location = "/" + StaticFiles.percentEncode(relative) + "/" + query
                return sendError(exchange, 301, "a folder", extraHeaders: ["Location: \(location)"])
            }
            guard let identity = lookup.identity else {
                return sendError(exchange, lookup.status, lookup.status == 403 ? "not readable" : "no such file")
            }
            answer(exchange, request, identity: identity, gzip: lookup.gzip, contentType: lookup.contentType,
                   acceptsGzip: acceptsGzip)
        })
    }

    /// RFC 9112 §9.3: HTTP/1.1 stays open unless either side says close;
    /// HTTP/1.0 only when it asks for keep-alive. A request with a body
    /// closes (its body is not read, so it could not be told from the next
    /// request), as does the last one allowed and any during shutdown.
    private func keepsAlive(_ connection: WebSocketConnection<Handler>, _ request: HTTPHead, version: String) -> Bool {
        if shuttingDown || connection.httpExchangeCount + 1 >= files.options.maxRequestsPerConnection { return false }
        if request.value("Transfer-Encoding") != nil { return false }
        if let length = request.value("Content-Length"), length.trimmingSpaces != "0" { return false }
        if request.listContains("Connection", token: "close") { return false }
        return version == "HTTP/1.1" || request.listContains("Connection", token: "keep-alive")
    }

    /// RFC 9110 §12.5.3: gzip listed without `q=0`.
    static func acceptsGzip(_ request: HTTPHead) -> Bool {
        for item in request.listValues("Accept-Encoding") {
            let parts = item.split(separator: ";")
            guard let coding = parts.first?.trimmingSpaces.lowercased(), coding == "gzip" || coding == "x-gzip" else { continue }
            let refused = parts.dropFirst().contains { parameter in
                let p = parameter.trimmingSpaces.lowercased()
                return p.hasPrefix("q=") && (Double(p.dropFirst(2)) ?? 1) == 0
            }
            return !refused
        }
        return false
    }

    private func answer(_ exchange: HTTPExchange<Handler>, _ request: HTTPHead, identity: FoundFile, gzip: FoundFile?,
                        contentType: String, acceptsGzip: Bool) {
        let useGzip = acceptsGzip && gzip != nil
        let file = useGzip ? gzip! : identity
        // Only the file sent is kept open.
        let other = useGzip ? identity : gzip
        if let fd = other?.descriptor, fd >= 0 { close(fd) }
        let size = file.metadata.size
        let range: Range<Int>
        var status = 200
        switch FileAnswer.evaluate(request, method: request.startLine.0, file: file.metadata, etag: file.etag) {
        case .notModified:
            // §15.4.5: the validators and caching headers, no body or length.
            if file.descriptor >= 0 { close(file.descriptor) }
            headBytes(exchange, status: 304, contentType: nil, contentLength: nil, file: file, varies: gzip != nil)
                .withUnsafeBytes { exchange.connection.sendHTTP($0) }
            return complete(exchange)
        case .unsatisfiable:
            if file.descriptor >= 0 { close(file.descriptor) }
            return sendError(exchange, 416, "range not satisfiable", extraHeaders: ["Content-Range: bytes */\(size)"])
        case .whole:
            range = 0..<size
        case .partial(let bytes):
            range = bytes
            status = 206
        }
        let head = headBytes(exchange, status: status, contentType: contentType, contentLength: range.count, file: file,
                             varies: gzip != nil) { head in
            head.append(contentsOf: "Accept-Ranges: bytes\r\n".utf8)
            if useGzip { head.append(contentsOf: "Content-Encoding: gzip\r\n".utf8) }
            if status == 206 {
                head.append(contentsOf: "Content-Range: bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)\r\n".utf8)
            }
        }
        if exchange.headOnly || range.isEmpty {
            if file.descriptor >= 0 { close(file.descriptor) }
            head.withUnsafeBytes { exchange.connection.sendHTTP($0) }
            return complete(exchange)
        }
        if let body = file.body {
            head.withUnsafeBytes { h in
                body.withUnsafeBytes { b in exchange.connection.sendHTTP(h, UnsafeRawBufferPointer(rebasing: b[range])) }
            }
            return complete(exchange)
        }
        head.withUnsafeBytes { exchange.connection.sendHTTP($0) }
        startStream(FileStream(exchange, descriptor: file.descriptor, range: range, responder: self))
    }

    /// A status with a short text body (none for HEAD).
    private func sendError(_ exchange: HTTPExchange<Handler>, _ status: Int, _ reason: String, extraHeaders: [String] = []) {
        let body = Array("\(status) \(HTTPResponse.reasonPhrase(status)): \(reason)\n".utf8)
        var bytes = headBytes(exchange, status: status, contentType: "text/plain; charset=utf-8",
                              contentLength: body.count, file: nil, varies: false) { head in
            for header in extraHeaders { head.append(contentsOf: (header + "\r\n").utf8) }
        }
        if !exchange.headOnly { bytes += body }
        bytes.withUnsafeBytes { exchange.connection.sendHTTP($0) }
        complete(exchange)
    }

    /// A response head, written as bytes (no string is joined per request):
    /// status, Date, type and length, the file's validators and caching
    /// headers, what `more` adds, and the connection's fate.
    private func headBytes(_ exchange: HTTPExchange<Handler>, status: Int, contentType: String?, contentLength: Int?,
                           file: FoundFile?, varies: Bool, _ more: (inout [UInt8]) -> Void = { _ in }) -> [UInt8] {
        // One head per response: counted here.
        endpoint.metrics.fileResponses &+= 1
        if exchange.keepAlive { endpoint.metrics.fileResponsesKeptAlive &+= 1 }
        var head: [UInt8] = []
        head.reserveCapacity(384)
        if status == 200 {
            head.append(contentsOf: "HTTP/1.1 200 OK\r\n".utf8)
        } else {
            head.append(contentsOf: "HTTP/1.1 \(status) \(HTTPResponse.reasonPhrase(status))\r\n".utf8)
        }
        head.append(contentsOf: date())
        head.append(contentsOf: "Server: UVWebSocket\r\n".utf8)
        if let contentType {
            head.append(contentsOf: "Content-Type: ".utf8)
            head.append(contentsOf: contentType.utf8)
            head.append(contentsOf: "\r\n".utf8)
        }
        if let contentLength { head.append(contentsOf: "Content-Length: \(contentLength)\r\n".utf8) }
        if let file {
            head.append(contentsOf: file.validators)
            head.append(contentsOf: cacheControlLine)
            // §12.5.5: the response depends on Accept-Encoding when a sibling exists.
            if varies { head.append(contentsOf: "Vary: Accept-Encoding\r\n".utf8) }
        }
        more(&head)
        head.append(contentsOf: "X-Content-Type-Options: nosniff\r\n".utf8)
        if !exchange.keepAlive {
            head.append(contentsOf: "Connection: close\r\n".utf8)
        } else if exchange.isHTTP10 {
            head.append(contentsOf: "Connection: keep-alive\r\n".utf8)
        }
        head.append(contentsOf: "\r\n".utf8)
        return head
    }

    /// RFC 9110 §6.6.1: an origin server with a clock sends `Date`.
    private func date() -> [UInt8] {
        let now = time(nil)
        if now != dateSecond {
            dateSecond = now
            dateLine = Array(("Date: " + HTTPDate.format(now) + "\r\n").utf8)
        }
        return dateLine
    }

    /// The response is sent or queued. Past the backpressure limit (a client
    /// that pipelines and does not read), the next request waits until the
    /// queue drains.
    private func complete(_ exchange: HTTPExchange<Handler>) {
        if exchange.connection.queuedByteCount > maxBackpressure {
            return startStream(FileStream(exchange, descriptor: -1, range: 0..<0, responder: self))
        }
        exchange.finish(shuttingDown: shuttingDown)
    }

    private func startStream(_ stream: FileStream<Handler>) {
        streams[ObjectIdentifier(stream.exchange.connection)] = stream
        stream.proceed()
    }

    func streamEnded(_ stream: FileStream<Handler>) {
        let key = ObjectIdentifier(stream.exchange.connection)
        if streams[key] === stream { streams[key] = nil }
    }

    /// The connection's queue drained: its response goes on.
    func drained(_ connection: WebSocketConnection<Handler>) {
        streams[ObjectIdentifier(connection)]?.proceed()
    }

    /// The connection closed: its response (if one streams) lets go of its file.
    func connectionClosed(_ connection: WebSocketConnection<Handler>) {
        streams.removeValue(forKey: ObjectIdentifier(connection))?.cancel()
    }
}
