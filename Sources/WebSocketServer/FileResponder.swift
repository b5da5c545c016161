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
    private let cache: FileCache
    private let maxBackpressure: Int
    /// Responses waiting for their connection's queue, by connection.
    private var streams: [ObjectIdentifier: FileStream<Handler>] = [:]
    /// The `Date` header, made once per second.
    private var dateSecond = -1
    private var dateLine = ""
    /// Set by the server's shutdown: responses from then on close their connection.
    var shuttingDown = false

    init(files: StaticFiles, loop: EventLoop, maxBackpressure: Int) {
        self.files = files
        self.loop = loop
        self.maxBackpressure = maxBackpressure
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
        if let entry = cache.fresh(relative, now: loop.now) {
            return answer(exchange, request, identity: entry.identity, gzip: entry.gzip, name: entry.name,
                          acceptsGzip: acceptsGzip)
        }
        let lookup = FileLookup(root: files.root, relative: relative, lookForGzip: options.precompressed,
                                prefersGzip: acceptsGzip,
                                inlineLimit: options.memoryCacheSize > 0 ? options.memoryCacheFileLimit : 0)
        ThreadPoolWork.run(on: loop, { lookup.run() }, then: { [self] in
            // The connection may have gone while the pool worked.
            guard connection.isInHTTPPhase else { return lookup.closeDescriptors() }
            cache.store(relative, lookup, now: loop.now)
            guard let identity = lookup.identity else {
                return sendError(exchange, lookup.status, lookup.status == 403 ? "not readable" : "no such file")
            }
            answer(exchange, request, identity: identity, gzip: lookup.gzip, name: lookup.name, acceptsGzip: acceptsGzip)
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
                        name: String, acceptsGzip: Bool) {
        let useGzip = acceptsGzip && gzip != nil
        let file = useGzip ? gzip! : identity
        // Only the file sent is kept open.
        let other = useGzip ? identity : gzip
        if let fd = other?.descriptor, fd >= 0 { close(fd) }
        let options = files.options
        let etag = file.metadata.etag
        var headers = ["ETag: " + etag, "Last-Modified: " + file.metadata.lastModified]
        if let cacheControl = options.cacheControl { headers.append("Cache-Control: " + cacheControl) }
        // §12.5.5: the response depends on Accept-Encoding when a sibling exists.
        if gzip != nil { headers.append("Vary: Accept-Encoding") }
        let size = file.metadata.size
        let range: Range<Int>
        var status = 200
        switch FileAnswer.evaluate(request, method: request.startLine.0, file: file.metadata, etag: etag) {
        case .notModified:
            // §15.4.5: the validators and caching headers, no body or length.
            if file.descriptor >= 0 { close(file.descriptor) }
            sendHead(exchange, status: 304, contentType: nil, contentLength: nil, headers: headers)
            return complete(exchange)
        case .unsatisfiable:
            if file.descriptor >= 0 { close(file.descriptor) }
            return sendError(exchange, 416, "range not satisfiable", extraHeaders: headers + ["Content-Range: bytes */\(size)"])
        case .whole:
            range = 0..<size
        case .partial(let bytes):
            range = bytes
            status = 206
            headers.append("Content-Range: bytes \(bytes.lowerBound)-\(bytes.upperBound - 1)/\(size)")
        }
        headers.append("Accept-Ranges: bytes")
        if useGzip { headers.append("Content-Encoding: gzip") }
        let head = headBytes(exchange, status: status, contentType: StaticFiles.contentType(for: name),
                             contentLength: range.count, headers: headers)
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
                              contentLength: body.count, headers: extraHeaders)
        if !exchange.headOnly { bytes += body }
        bytes.withUnsafeBytes { exchange.connection.sendHTTP($0) }
        complete(exchange)
    }

    private func sendHead(_ exchange: HTTPExchange<Handler>, status: Int, contentType: String?, contentLength: Int?,
                          headers: [String]) {
        headBytes(exchange, status: status, contentType: contentType, contentLength: contentLength, headers: headers)
            .withUnsafeBytes { exchange.connection.sendHTTP($0) }
    }

    private func headBytes(_ exchange: HTTPExchange<Handler>, status: Int, contentType: String?, contentLength: Int?,
                           headers: [String]) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(HTTPResponse.reasonPhrase(status))\r\n" + date() + "Server: UVWebSocket\r\n"
        if let contentType { head += "Content-Type: " + contentType + "\r\n" }
        if let contentLength { head += "Content-Length: \(contentLength)\r\n" }
        for header in headers { head += header + "\r\n" }
        head += "X-Content-Type-Options: nosniff\r\n"
        if !exchange.keepAlive {
            head += "Connection: close\r\n"
        } else if exchange.isHTTP10 {
            head += "Connection: keep-alive\r\n"
        }
        head += "\r\n"
        return Array(head.utf8)
    }

    /// RFC 9110 §6.6.1: an origin server with a clock sends `Date`.
    private func date() -> String {
        let now = time(nil)
        if now != dateSecond {
            dateSecond = now
            dateLine = "Date: " + HTTPDate.format(now) + "\r\n"
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
        exchange.finish()
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
