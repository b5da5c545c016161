import Foundation
import Testing
@testable import WebSocketServer

/// Reads HTTP responses one at a time off a kept-alive connection.
final class HTTPReader {
    struct Response {
        var status: Int
        var head: String
        var body: [UInt8]
        func header(_ name: String) -> String? {
            for line in head.components(separatedBy: "\r\n").dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == name.lowercased() {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
            return nil
        }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let client: RawClient
    private var buffered: [UInt8] = []

    init(port: Int) throws { client = try RawClient(port: port) }

    /// The next response; `headOnly` for a HEAD (its length names no body).
    func next(headOnly: Bool = false) throws -> Response {
        while true {
            if let end = find([13, 10, 13, 10]) {
                let head = String(decoding: buffered[..<end], as: UTF8.self)
                var response = Response(status: Int(head.split(separator: " ")[1]) ?? 0, head: head, body: [])
                let length = headOnly || response.status == 304 ? 0 : Int(response.header("Content-Length") ?? "0") ?? 0
                while buffered.count < end + 4 + length {
                    let chunk = try client.receive()
                    if chunk.isEmpty { throw TestError("closed inside a body") }
                    buffered += chunk
                }
                response.body = Array(buffered[(end + 4)..<(end + 4 + length)])
                buffered.removeFirst(end + 4 + length)
                return response
            }
            let chunk = try client.receive()
            if chunk.isEmpty { throw TestError("closed before a response: \(String(decoding: buffered, as: UTF8.self))") }
            buffered += chunk
        }
    }

    func get(_ path: String, _ headers: [String] = [], method: String = "GET") throws -> Response {
        try client.send("\(method) \(path) HTTP/1.1\r\nHost: x\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
        return try next(headOnly: method == "HEAD")
    }

    private func find(_ needle: [UInt8]) -> Int? {
        guard buffered.count >= needle.count else { return nil }
        for i in 0...(buffered.count - needle.count) where Array(buffered[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
}

@Suite("Static files: keep-alive, validators, ranges, precompressed siblings, safety", .serialized)
struct StaticFileTests {
    static func root() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("uvws-files-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try "<h1>index</h1>".write(to: dir.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try "body{}".write(to: dir.appendingPathComponent("sub/style.css"), atomically: true, encoding: .utf8)
        try "let a = 1".write(to: dir.appendingPathComponent("app.js"), atomically: true, encoding: .utf8)
        try Data([0x1f, 0x8b, 1, 2, 3]).write(to: dir.appendingPathComponent("app.js.gz"))
        try "secret".write(to: dir.appendingPathComponent(".env"), atomically: true, encoding: .utf8)
        // 300 KB: past the memory cache's file limit, so streamed from disk.
        try Data((0..<300_000).map { UInt8($0 % 251) }).write(to: dir.appendingPathComponent("big.bin"))
        try? FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("out").path, withDestinationPath: "/etc/hostname")
        return dir.path
    }

    @Test("several requests on one connection, and a response past the cache limit streamed whole")
    func keepAlive() throws {
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.root())
        defer { harness.stop() }
        let reader = try HTTPReader(port: harness.port)
        for _ in 0..<3 {
            let index = try reader.get("/")
            #expect(index.status == 200 && index.text == "<h1>index</h1>" && index.header("Connection") == nil)
            #expect(try reader.get("/sub/style.css").text == "body{}")
            let big = try reader.get("/big.bin")
            #expect(big.body == (0..<300_000).map { UInt8($0 % 251) })
        }
        #expect(try reader.get("/missing").status == 404)
        // Still the same connection after a 404.
        #expect(try reader.get("/").status == 200)
        let metrics = harness.metrics
        #expect(metrics.connectionsOpen == 1 && metrics.connectionsAccepted == 1)
        #expect(metrics.fileResponses == 11 && metrics.fileResponsesKeptAlive == 11)
    }

    /// This process's descriptors open on `path` (the server runs in it).
    static func descriptors(on path: String) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) == path }.count
    }

    @Test("a reader that leaves in the middle of a streamed file, or a stalled one dropped at sendTimeout, lets go of the file")
    func abandonedDownloads() throws {
        let root = try Self.root()
        // 32 MB (sparse): more than the kernel's socket buffers take, so a
        // reader that stops reading stalls the response.
        let big = (root as NSString).resolvingSymlinksInPath + "/huge.bin"
        #expect(truncate(big, 32 << 20) == 0 || (FileManager.default.createFile(atPath: big, contents: nil) && truncate(big, 32 << 20) == 0))
        var options = StaticFileOptions()
        options.sendTimeout = .milliseconds(400)
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: root, fileOptions: options)
        defer { harness.stop() }
        var stalled: [RawClient] = []
        for _ in 0..<3 {
            let client = try RawClient(port: harness.port)
            try client.send("GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try !client.receive().isEmpty)
            stalled.append(client)
        }
        // Three readers that read one chunk and stop, still connected: each
        // holds the file open until dropped for taking nothing.
        usleep(100_000)
        #expect(Self.descriptors(on: big) == 3)
        let deadline = Date().addingTimeInterval(5)
        while harness.metrics.connectionsOpen > 0 && Date() < deadline { usleep(50_000) }
        #expect(Self.descriptors(on: big) == 0)
        #expect(harness.metrics.connectionsOpen == 0)
        stalled.removeAll()
        for _ in 0..<5 {
            let client = try RawClient(port: harness.port)
            try client.send("GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try !client.receive().isEmpty)
        }
        // Those five closed (their RawClients are gone): no file stays open.
        let again = Date().addingTimeInterval(5)
        while Self.descriptors(on: big) > 0 && Date() < again { usleep(50_000) }
        #expect(Self.descriptors(on: big) == 0)
        #expect(try HTTPReader(port: harness.port).get("/big.bin").body.count == 300_000)
    }

    @Test("a folder named without its slash is redirected to it; with it, its index.html; status lines name their status")
    func folders() throws {
        let root = try Self.root()
        try FileManager.default.createDirectory(atPath: root + "/my docs", withIntermediateDirectories: true)
        try "docs".write(toFile: root + "/my docs/index.html", atomically: true, encoding: .utf8)
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: root)
        defer { harness.stop() }
        let reader = try HTTPReader(port: harness.port)
        let moved = try reader.get("/my%20docs?x=1")
        #expect(moved.status == 301 && moved.header("Location") == "/my%20docs/?x=1")
        #expect(moved.head.hasPrefix("HTTP/1.1 301 Moved Permanently\r\n"))
        #expect(try reader.get("/my%20docs/").text == "docs")
        // Never an absolute location taken from the request.
        #expect(try reader.get("//sub").header("Location") == "/sub/")
        #expect(try reader.get("/index.html", ["Range: bytes=0-0"]).head.hasPrefix("HTTP/1.1 206 Partial Content\r\n"))
        #expect(try reader.get("/index.html", ["Range: bytes=99-"]).head.hasPrefix("HTTP/1.1 416 Range Not Satisfiable\r\n"))
        let etag = try #require(try reader.get("/").header("ETag"))
        #expect(try reader.get("/", ["If-None-Match: \(etag)"]).head.hasPrefix("HTTP/1.1 304 Not Modified\r\n"))
    }

    @Test("a graceful shutdown lets a file on its way end, then closes; idle kept-alive connections close at once")
    func shutdownLetsResponsesEnd() throws {
        let root = try Self.root()
        let big = (root as NSString).resolvingSymlinksInPath + "/huge.bin"
        #expect(FileManager.default.createFile(atPath: big, contents: nil) && truncate(big, 8 << 20) == 0)
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: root)
        let idle = try HTTPReader(port: harness.port)
        #expect(try idle.get("/").status == 200)
        let downloading = try RawClient(port: harness.port)
        try downloading.send("GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        var received = try downloading.receive()
        #expect(!received.isEmpty)
        // Shutdown from another thread while the file is on its way.
        let stopped = DispatchSemaphore(value: 0)
        let stopper = Thread {
            harness.stop(drainTimeout: .seconds(10))
            stopped.signal()
        }
        stopper.start()
        #expect(idle.client.waitForClose(timeout: 5))
        while true {
            let chunk = try downloading.receive()
            if chunk.isEmpty { break }
            received += chunk
        }
        let text = String(decoding: received.prefix(512), as: UTF8.self)
        let headLength = (text.range(of: "\r\n\r\n").map { text.utf8.distance(from: text.startIndex, to: $0.upperBound) }) ?? 0
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(received.count - headLength == 8 << 20)
        #expect(stopped.wait(timeout: .now() + 15) == .success)
    }

    @Test("pipelined requests are answered in order")
    func pipelining() throws {
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.root())
        defer { harness.stop() }
        let reader = try HTTPReader(port: harness.port)
        let paths = ["/sub/style.css", "/big.bin", "/", "/missing", "/app.js", "/"]
        try reader.client.send(paths.map { "GET \($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
        let expected = ["body{}", nil, "<h1>index</h1>", nil, "let a = 1", "<h1>index</h1>"]
        for (path, text) in zip(paths, expected) {
            let response = try reader.next()
            if let text { #expect(response.text == text, "\(path)") }
            if path == "/big.bin" { #expect(response.body.count == 300_000) }
            if path == "/missing" { #expect(response.status == 404) }
        }
    }

    @Test("Connection: close, HTTP/1.0 and the request limit end the connection after the response")
    func connectionEnds() throws {
        var options = StaticFileOptions()
        options.maxRequestsPerConnection = 3
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.root(), fileOptions: options)
        defer { harness.stop() }
        let reader = try HTTPReader(port: harness.port)
        #expect(try reader.get("/").header("Connection") == nil)
        #expect(try reader.get("/").header("Connection") == nil)
        #expect(try reader.get("/").header("Connection") == "close")
        #expect(reader.client.waitForClose(timeout: 2))

        let closing = try HTTPReader(port: harness.port)
        #expect(try closing.get("/", ["Connection: close"]).header("Connection") == "close")
        #expect(closing.client.waitForClose(timeout: 2))

        let old = try HTTPReader(port: harness.port)
        try old.client.send("GET / HTTP/1.0\r\n\r\n")
        #expect(try old.next().header("Connection") == "close")
        #expect(old.client.waitForClose(timeout: 2))
        let oldKept = try HTTPReader(port: harness.port)
        try oldKept.client.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try oldKept.next().header("Connection") == "keep-alive")
        try oldKept.client.send("GET /app.js HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try oldKept.next().text == "let a = 1")
    }

    @Test("an idle kept-alive connection is closed at keepAliveTimeout, and not while requests come sooner")
    func idleTimeout() throws {
        var options = StaticFileOptions()
        options.keepAliveTimeout = .milliseconds(300)
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.root(), fileOptions: options)
        defer { harness.stop() }
        let reader = try HTTPReader(port: harness.port)
        #expect(try reader.get("/").status == 200)
        usleep(150_000)
        #expect(try reader.get("/").status == 200)
        let started = Date()
        #expect(reader.client.waitForClose(timeout: 3))
        let waited = Date().timeIntervalSince(started)
        #expect(waited > 0.2 && waited < 1.5, "closed after \(waited) s")
    }

    @Test("ETag and Last-Modified: 304 for If-None-Match and If-Modified-Since; a changed file is sent again")
    func validators() throws {
        let root = try Self.root()
        var options = StaticFileOptions()
        options.revalidateAfter = .zero
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: root, fileOptions: options)
        defer { harness.stop() }
        let reader = try HTTPReader(port: harness.port)
        let first = try reader.get("/sub/style.css")
        let etag = try #require(first.header("ETag"))
        let modified = try #require(first.header("Last-Modified"))
        #expect(etag.hasPrefix("\"") && first.header("Cache-Control") == "no-cache" && first.header("Date") != nil)
        let cached = try reader.get("/sub/style.css", ["If-None-Match: \"other\", \(etag)"])
        #expect(cached.status == 304 && cached.body.isEmpty && cached.header("ETag") == etag)
        #expect(try reader.get("/sub/style.css", ["If-None-Match: W/\(etag)"]).status == 304)
        #expect(try reader.get("/sub/style.css", ["If-Modified-Since: \(modified)"]).status == 304)
        #expect(try reader.get("/sub/style.css", ["If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT"]).status == 200)
        // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
        #expect(try reader.get("/sub/style.css", ["If-None-Match: \"other\"", "If-Modified-Since: \(modified)"]).status == 200)
        try "body{color:red}".write(toFile: root + "/sub/style.css", atomically: true, encoding: .utf8)
        let changed = try reader.get("/sub/style.css", ["If-None-Match: \(etag)"])
        #expect(changed.status == 200 && changed.text == "body{color:red}" && changed.header("ETag") != etag)
    }

    @Test("Range: 206 with Content-Range, suffix and open ranges, 416, If-Range; HEAD has GET's headers")
    func ranges() throws {
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.root())
        defer { harness.stop() }
        let reader = try HTTPReader(port: harness.port)
        let all = (0..<300_000).map { UInt8($0 % 251) }
        let part = try reader.get("/big.bin", ["Range: bytes=1000-1999"])
        #expect(part.status == 206 && part.header("Content-Range") == "bytes 1000-1999/300000" && part.body == Array(all[1000..<2000]))
        let tail = try reader.get("/big.bin", ["Range: bytes=-10"])
        #expect(tail.status == 206 && tail.body == Array(all[299_990...]))
        let open = try reader.get("/index.html", ["Range: bytes=4-"])
        #expect(open.status == 206 && open.text == "index</h1>")
        let beyond = try reader.get("/big.bin", ["Range: bytes=300000-"])
        #expect(beyond.status == 416 && beyond.header("Content-Range") == "bytes */300000")
        #expect(try reader.get("/big.bin", ["Range: bytes=0-1,5-6"]).status == 200)
        #expect(try reader.get("/big.bin", ["Range: bytes=5-1"]).status == 200)
        let etag = try #require(try reader.get("/index.html", method: "HEAD").header("ETag"))
        #expect(try reader.get("/index.html", ["Range: bytes=0-0", "If-Range: \(etag)"]).status == 206)
        #expect(try reader.get("/index.html", ["Range: bytes=0-0", "If-Range: \"stale\""]).status == 200)

        let get = try reader.get("/big.bin")
        let head = try reader.get("/big.bin", method: "HEAD")
        #expect(head.body.isEmpty && head.status == 200)
        for name in ["Content-Length", "Content-Type", "ETag", "Last-Modified", "Accept-Ranges", "Cache-Control"] {
            #expect(head.header(name) == get.header(name), "\(name)")
        }
        // The connection is still in step after all of these.
        #expect(try reader.get("/").text == "<h1>index</h1>")
    }

    @Test("a .gz sibling is served to clients that take gzip, with Content-Encoding and Vary")
    func precompressed() throws {
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.root())
        defer { harness.stop() }
        let reader = try HTTPReader(port: harness.port)
        let gz = try reader.get("/app.js", ["Accept-Encoding: br, gzip;q=0.8"])
        #expect(gz.body == [0x1f, 0x8b, 1, 2, 3] && gz.header("Content-Encoding") == "gzip")
        #expect(gz.header("Vary") == "Accept-Encoding" && gz.header("Content-Type") == "text/javascript; charset=utf-8")
        let plain = try reader.get("/app.js")
        #expect(plain.text == "let a = 1" && plain.header("Content-Encoding") == nil && plain.header("Vary") == "Accept-Encoding")
        #expect(try reader.get("/app.js", ["Accept-Encoding: gzip;q=0"]).text == "let a = 1")
        #expect(try reader.get("/index.html", ["Accept-Encoding: gzip"]).header("Vary") == nil)
    }

    @Test("dot-files, symlinks out of the root and other methods are refused; the connection goes on")
    func refusals() throws {
        let harness = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.root())
        defer { harness.stop() }
        let reader = try HTTPReader(port: harness.port)
        #expect(try reader.get("/.env").status == 404)
        #expect(try reader.get("/sub/../.env").status == 400)
        #expect(try reader.get("/out").status == 404)
        let post = try reader.get("/", ["Content-Length: 0"], method: "POST")
        #expect(post.status == 405 && post.header("Allow") == "GET, HEAD")
        #expect(try reader.get("/").status == 200)

        var options = StaticFileOptions()
        options.serveDotFiles = true
        let open = try ServerHarness(handler: EchoHandler(), staticRoot: try Self.root(), fileOptions: options)
        defer { open.stop() }
        #expect(try HTTPReader(port: open.port).get("/.env").text == "secret")
    }

    @Test("bad static-file options are refused at set-up", arguments: [
        { (o: inout StaticFileOptions) in o.keepAliveTimeout = .zero },
        { (o: inout StaticFileOptions) in o.maxRequestsPerConnection = 0 },
        { (o: inout StaticFileOptions) in o.cacheControl = "no-cache\r\nX-Evil: 1" },
        { (o: inout StaticFileOptions) in o.memoryCacheSize = -1 },
    ] as [@Sendable (inout StaticFileOptions) -> Void])
    func badOptions(change: @Sendable (inout StaticFileOptions) -> Void) throws {
        var options = StaticFileOptions()
        change(&options)
        let server = try WebSocketServer(handler: EchoHandler())
        #expect(throws: WebSocketServerError.self) { try server.serveFiles(from: try Self.root(), options: options) }
    }

    @Test("HTTP dates and byte ranges, by the RFC's examples")
    func rules() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Xyz 1994 08:49:37 GMT") == nil)
        #expect(FileAnswer.byteRange("bytes=0-499", size: 10000) == .partial(0..<500))
        #expect(FileAnswer.byteRange("bytes=9500-", size: 10000) == .partial(9500..<10000))
        #expect(FileAnswer.byteRange("bytes=-500", size: 10000) == .partial(9500..<10000))
        #expect(FileAnswer.byteRange("bytes=-20000", size: 10000) == .partial(0..<10000))
        #expect(FileAnswer.byteRange("bytes=0-99999", size: 10000) == .partial(0..<10000))
        #expect(FileAnswer.byteRange("bytes=10000-", size: 10000) == .unsatisfiable)
        #expect(FileAnswer.byteRange("bytes=-0", size: 10000) == .unsatisfiable)
        #expect(FileAnswer.byteRange("items=0-1", size: 10000) == .whole)
        #expect(FileAnswer.byteRange("bytes=a-b", size: 10000) == .whole)
        #expect(FileAnswer.matchesAny("*", etag: "\"x\""))
        #expect(FileAnswer.matchesAny(" \"a\" , W/\"x\"", etag: "\"x\""))
        #expect(!FileAnswer.matchesAny("\"a\"", etag: "\"x\""))
    }
}
