import UVKit
import WebSocketCore

/// The HTTP side of a connection: reading the request head, then either the
/// WebSocket upgrade (RFC 6455 §4.2), a static file, or an error status.
extension WebSocketConnection {
    /// Room for the next read of the head: 1 KiB at first (a browser's upgrade
    /// request is about 500 bytes), doubled up to the head size limit.
    func headReadBuffer() -> UnsafeMutableRawBufferPointer {
        let limit = server.options.requestHeadLimits.maxHeadSize
        if head == nil {
            headCapacity = min(1024, limit)
            head = .allocate(byteCount: headCapacity, alignment: 8)
        } else if headCount == headCapacity && headCapacity < limit {
            let capacity = min(headCapacity * 2, limit)
            let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
            grown.copyMemory(from: head!, byteCount: headCount)
            head!.deallocate()
            head = grown
            headCapacity = capacity
        }
        return UnsafeMutableRawBufferPointer(start: head! + headCount, count: headCapacity - headCount)
    }

    func handshakeBytesArrived(scannedBefore: Int) {
        let bytes = UnsafeRawBufferPointer(start: head, count: headCount)
        switch HTTPHeadParser.parse(bytes, limits: server.options.requestHeadLimits, scannedBefore: scannedBefore) {
        case .incomplete:
            return
        case .failure(let error):
            reject(HTTPResponse.error(error.status, "malformed or oversized request head"))
        case .complete(let request, let length):
            route(request, headLength: length)
        }
    }

    func route(_ request: HTTPHead, headLength: Int) {
        if server.isOverConnectionLimit {
            reject(HTTPResponse.error(503, "too many connections", extraHeaders: ["Retry-After: 1"]))
            return
        }
        let (method, target, _) = request.startLine
        let path = String(target.prefix { $0 != "?" && $0 != "#" })
        if server.webSocketPaths.contains(path) {
            upgrade(request, headLength: headLength, path: path)
        } else if let files = server.staticFiles {
            serveFile(files, method: method, target: target)
        } else {
            reject(HTTPResponse.error(404, "no such path"))
        }
    }

    func upgrade(_ request: HTTPHead, headLength: Int, path: String) {
        // The article's rule: a plain HTTP request to the WebSocket path is a 400.
        guard ServerHandshake.asksForWebSocket(request) else {
            reject(HTTPResponse.error(400, "this path accepts WebSocket requests only"))
            return
        }
        let upgrade: UpgradeRequest
        switch ServerHandshake.validate(request) {
        case .failure(let rejection):
            reject(HTTPResponse.error(rejection.status, rejection.reason, extraHeaders: rejection.extraHeaders))
            return
        case .success(let valid):
            upgrade = valid
        }
        // §10.2: a browser always sends Origin; a server may refuse origins it
        // does not know with 403.
        let allowed = server.options.allowedOrigins
        if !allowed.isEmpty, let origin = upgrade.origin, !allowed.contains(origin) {
            reject(HTTPResponse.error(403, "origin not allowed"))
            return
        }
        subprotocol = ServerHandshake.selectSubprotocol(offered: upgrade.offeredSubprotocols,
                                                        supported: server.options.subprotocols)
        self.path = path
        let response = ServerHandshake.switchingProtocolsResponse(key: upgrade.key, subprotocol: subprotocol)
        state = .open
        var responseText = response
        responseText.withUTF8 { writeNow(UnsafeRawBufferPointer($0)) }
        guard state == .open else { return }

        // Bytes after the head are the first frames (a client may send them in
        // the same segment as the request). Move them into the loop's ring in
        // pieces it can hold, parsing as they go.
        let early = headCount - headLength
        let headBytes = head!
        server.metrics.webSocketsOpened &+= 1
        handler.didOpen(self)
        if early > 0 {
            var offset = headLength
            while offset < headCount && (state == .open || state == .closeSent) {
                let n = server.readRing.write(UnsafeRawBufferPointer(start: headBytes + offset, count: headCount - offset))
                if n == 0 { break }
                offset += n
                readFrames()
            }
            stashLeftover()
        }
        freeHead()
        if state == .open { scheduleTimer() }
    }

    func serveFile(_ files: StaticFiles, method: String, target: String) {
        guard method == "GET" || method == "HEAD" else {
            reject(HTTPResponse.error(405, "only GET and HEAD", extraHeaders: ["Allow: GET, HEAD"]))
            return
        }
        switch files.resolve(target: target) {
        case .error(let status):
            reject(HTTPResponse.error(status, status == 404 ? "no such file" : "bad path"))
        case .file(let filePath, let contentType):
            guard let body = files.read(filePath) else {
                reject(HTTPResponse.error(404, "no such file"))
                return
            }
            respond(HTTPResponse.make(status: 200, contentType: contentType, body: body,
                                      extraHeaders: ["Cache-Control: no-cache"], headOnly: method == "HEAD"))
        }
    }

    func reject(_ response: [UInt8]) {
        server.metrics.handshakesRejected &+= 1
        respond(response)
    }

    /// Sends a whole HTTP response and ends the connection.
    func respond(_ response: [UInt8]) {
        freeHead()
        state = .draining
        response.withUnsafeBytes { writeNow($0) }
        beginDraining()
    }

    func freeHead() {
        head?.deallocate()
        head = nil
        headCount = 0
        headCapacity = 0
    }
}
