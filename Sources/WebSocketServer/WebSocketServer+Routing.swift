import UVKit
import WebSocketCore
import WebSocketRuntime

/// The HTTP side of a server connection: once its request head is read, the
/// WebSocket upgrade (RFC 6455 §4.2), a static file, or an error status.
extension WebSocketServer {
    func httpPhaseEnded(_ connection: WebSocketConnection<Handler>, _ outcome: HTTPPhaseOutcome) {
        switch outcome {
        case .head(let request, let length):
            route(connection, request, headLength: length)
        case .malformed(let error):
            reject(connection, error.status, "malformed or oversized request head")
        case .timedOut:
            // Slowloris: the head did not arrive in time. Drop without a word.
            endpoint.metrics.handshakesTimedOut &+= 1
            logger.debug("request head timed out", metadata: ["peer": "\(peer(connection))"])
            connection.abortHTTP()
        case .connectionLost:
            connection.abortHTTP()
        case .tlsFailed(let failure):
            // Not TLS (plain HTTP on the TLS port), no common version, garbage.
            endpoint.metrics.tlsHandshakesFailed &+= 1
            logger.debug("TLS handshake failed", metadata: ["peer": "\(peer(connection))", "reason": "\(failure)"])
            connection.abortHTTP()
        }
    }

    func route(_ connection: WebSocketConnection<Handler>, _ request: HTTPHead, headLength: Int) {
        if isOverConnectionLimit {
            reject(connection, 503, "too many connections", extraHeaders: ["Retry-After: 1"])
            return
        }
        let target = request.startLine.1
        let path = String(target.prefix { $0 != "?" && $0 != "#" })
        if let hook = webSocketRoutes[path] {
            upgrade(connection, request, headLength: headLength, path: path, hook: hook)
        } else if let respond = httpRoutes[path] {
            answer(connection, request, path: path, with: respond)
        } else if let fileResponder {
            fileResponder.respond(connection, request, headLength: headLength)
        } else {
            reject(connection, 404, "no such path", detail: path)
        }
    }

    func upgrade(_ connection: WebSocketConnection<Handler>, _ request: HTTPHead, headLength: Int, path: String,
                 hook: UpgradeHook<Handler.ConnectionData>?) {
        // The article's rule: a plain HTTP request to the WebSocket path is a 400.
        guard ServerHandshake.asksForWebSocket(request) else {
            reject(connection, 400, "this path accepts WebSocket requests only", detail: path)
            return
        }
        let upgrade: UpgradeRequest
        switch ServerHandshake.validate(request) {
        case .failure(let rejection):
            reject(connection, rejection.status, rejection.reason, extraHeaders: rejection.extraHeaders)
            return
        case .success(let valid):
            upgrade = valid
        }
        // §10.2: a browser always sends Origin; a server may refuse origins it
        // does not know with 403.
        let allowed = options.allowedOrigins
        if !allowed.isEmpty, let origin = upgrade.origin, !allowed.contains(origin) {
            reject(connection, 403, "origin not allowed", detail: "origin \(origin)")
            return
        }
        var subprotocol = ServerHandshake.selectSubprotocol(offered: upgrade.offeredSubprotocols,
                                                            supported: options.subprotocols)
        var extraHeaders: [String] = []
        if let hook {
            switch hook(WebSocketUpgradeRequest(head: request, upgrade: upgrade, peerAddress: connection.peerAddress)) {
            case .refuse(let status, let headers, let reason):
                guard (400...599).contains(status), headers.allSatisfy(HTTPFieldRules.isValidFieldLine) else {
                    logger.error("upgrade hook refused with an invalid status or header", metadata: ["status": "\(status)"])
                    reject(connection, 500, "the upgrade hook's answer is invalid", detail: path)
                    return
                }
                reject(connection, status, reason, extraHeaders: headers, detail: path)
                return
            case .accept(let chosen, let data, let headers):
                // §4.2.2: the server's subprotocol is one the client offered.
                if let chosen, !upgrade.offeredSubprotocols.contains(chosen) {
                    logger.error("upgrade hook chose a subprotocol the client did not offer", metadata: ["subprotocol": "\(chosen)"])
                    reject(connection, 500, "the upgrade hook's answer is invalid", detail: path)
                    return
                }
                guard headers.allSatisfy(HTTPFieldRules.isValidFieldLine) else {
                    logger.error("upgrade hook gave an invalid header line")
                    reject(connection, 500, "the upgrade hook's answer is invalid", detail: path)
                    return
                }
                if let chosen { subprotocol = chosen }
                connection.data = data
                extraHeaders = headers
            }
        }
        // §9.1: the first supported extension that accepts one of the offers;
        // a header that does not parse is ignored (no extension).
        var agreed: (response: String, extension: any MessageExtension)?
        let negotiators = endpoint.negotiators
        if !negotiators.isEmpty, let offers = ExtensionOffer.parse(request.listValues("Sec-WebSocket-Extensions")) {
            agreed = ExtensionNegotiation.accept(offers: offers, supported: negotiators)
        }
        connection.path = upgrade.path
        connection.writeHTTP(ServerHandshake.switchingProtocolsResponse(key: upgrade.key, subprotocol: subprotocol,
                                                                        extensions: agreed?.response,
                                                                        extraHeaders: extraHeaders))
        connection.openWebSocket(headLength: headLength, subprotocol: subprotocol, messageExtension: agreed?.extension)
    }

    /// Answers with an error status and ends the connection; at debug level
    /// the log says who was refused and why (a browser sees only 1006).
    func reject(_ connection: WebSocketConnection<Handler>, _ status: Int, _ reason: String,
                extraHeaders: [String] = [], detail: String? = nil) {
        endpoint.metrics.handshakesRejectedByStatus[UInt16(clamping: status), default: 0] &+= 1
        logger.debug("request refused", metadata: ["status": "\(status)", "reason": "\(reason)",
                                                   "peer": "\(peer(connection))", "detail": "\(detail ?? "-")"])
        connection.respondAndClose(HTTPResponse.error(status, reason, extraHeaders: extraHeaders))
    }

    func peer(_ connection: WebSocketConnection<Handler>) -> String {
        connection.peerAddress.map { "\($0)" } ?? "gone"
    }
}
