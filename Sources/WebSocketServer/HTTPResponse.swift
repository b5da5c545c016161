/// The reason phrases, and the upgrade path's error responses, each of which
/// closes its connection (`Connection: close`). The static files build their
/// own heads (`FileResponder`), on connections kept alive.
enum HTTPResponse {
    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 402: return "Payment Required"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 416: return "Range Not Satisfiable"
        case 413: return "Content Too Large"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 426: return "Upgrade Required"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return "Error"
        }
    }

    /// A head plus body.
    static func make(status: Int, contentType: String, body: [UInt8], extraHeaders: [String] = []) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reasonPhrase(status))\r\n"
        head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        head += "X-Content-Type-Options: nosniff\r\n"
        for header in extraHeaders { head += header + "\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    static func error(_ status: Int, _ message: String, extraHeaders: [String] = []) -> [UInt8] {
        make(status: status, contentType: "text/plain; charset=utf-8",
             body: Array("\(status) \(reasonPhrase(status)): \(message)\n".utf8), extraHeaders: extraHeaders)
    }
}
