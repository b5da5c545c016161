import ArgumentParser
import Foundation
import WebSocketClient
#if canImport(Glibc)
import Glibc
#endif

/// Runs Autobahn|Testsuite's fuzzingserver protocol with `WebSocketClient`:
/// asks the case count, runs every case echoing each message back as it came
/// (type and fragments, chunk by chunk), then has the reports written.
@main
struct AutobahnClient: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autobahn-client",
        abstract: "Drives Autobahn|Testsuite's fuzzingserver with the WebSocket client."
    )

    @Option(help: "The fuzzingserver's URL.")
    var url = "ws://127.0.0.1:9001"

    @Option(help: "The agent name the reports use.")
    var agent = "uvwebsocket-client"

    @Option(help: "Run only these case numbers (1-based; repeatable). Default: all.")
    var `case`: [Int] = []

    @Flag(help: "Offer permessage-deflate (RFC 7692), as Autobahn's sections 12 and 13 need.")
    var compression = false

    @Option(help: "With --compression: zlib level 0-9 (the suite checks what comes back, not how small it was).")
    var compressionLevel = 6

    func validate() throws {
        if !(0...9).contains(compressionLevel) { throw ValidationError("--compression-level \(compressionLevel) is not 0-9") }
    }

    func run() throws {
        var options = WebSocketClientOptions()
        if compression {
            var deflate = CompressionOptions.forClient
            deflate.minimumSize = 0
            deflate.level = compressionLevel
            // zlib's default table: on the suite's bitmap (section 12.2) level
            // 1 compresses 24 MB/s with it and 15 MB/s with the library's
            // default of 4 (measured here), and sections 12 and 13 are most of
            // `make test`'s time.
            deflate.memoryLevel = 8
            options.compression = deflate
        }
        // Section 9 sends up to 16 MiB messages; the echo streams them chunk by chunk.
        options.maxMessageSize = 64 * 1024 * 1024
        options.keepAliveInterval = .zero
        options.handshakeTimeout = .seconds(30)
        let session = Session()
        let client = try WebSocketClient(handler: session, options: options)
        session.start(client: client, url: url, agent: agent, only: self.case)
        try client.run()
        if let failure = session.failure {
            // One line naming the cause, exit status 1; usage is for bad flags.
            FileHandle.standardError.write(Data("error: \(failure)\n".utf8))
            throw ExitCode.failure
        }
        print("autobahn-client: ran \(session.casesRun) cases, reports updated")
    }
}

/// One Autobahn session: the connections run one after another.
final class Session: WebSocketHandler {
    enum Step { case count, testCase(Int), report, done }
    var step = Step.count
    var caseCount = 0
    var casesRun = 0
    var only: [Int] = []
    var failure: String?
    var baseURL = ""
    var agent = ""
    unowned(unsafe) var client: WebSocketClient<Session>!
    /// The case count arrives as one text message.
    var countText: [UInt8] = []

    func start(client: WebSocketClient<Session>, url: String, agent: String, only: [Int]) {
        self.client = client
        baseURL = url
        self.agent = agent
        self.only = only
        open("\(url)/getCaseCount")
    }

    func open(_ url: String) {
        client.connect(to: url) { [unowned self] result in
            if case .failure(let error) = result {
                failure = "\(url): \(error)"
            }
        }
    }

    func didReceive(_ connection: WebSocketConnection<Session>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        switch step {
        case .count:
            countText += chunk
        case .testCase:
            connection.send(chunk, type: type, isFinal: isFinal)
        case .report, .done:
            break
        }
    }

    /// The next step starts once the socket is closed, not at the closing
    /// handshake: the fuzzing server records a case when its TCP connection
    /// ends, and a report asked for earlier can miss the last case.
    func didClose(_ connection: WebSocketConnection<Session>, code: CloseCode, reason: String) {
        client.whenIdle { [unowned self] in stepAfterClose() }
    }

    func stepAfterClose() {
        switch step {
        case .count:
            caseCount = Int(String(decoding: countText, as: UTF8.self)) ?? 0
            if caseCount == 0 {
                failure = "the fuzzingserver reported no cases"
                step = .done
                return
            }
            next(after: 0)
        case .testCase(let n):
            casesRun += 1
            next(after: n)
        case .report:
            step = .done
        case .done:
            break
        }
    }

    func next(after n: Int) {
        var candidate = n + 1
        if !only.isEmpty { candidate = only.filter { $0 > n }.min() ?? caseCount + 1 }
        if candidate <= caseCount {
            step = .testCase(candidate)
            open("\(baseURL)/runCase?case=\(candidate)&agent=\(agent)")
        } else {
            step = .report
            open("\(baseURL)/updateReports?agent=\(agent)")
        }
    }
}
