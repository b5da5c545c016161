import Foundation
import Testing
import UVKit
import WebSocketClient
import WebSocketServer

/// Certificates made for a test run by `scripts/make-tls-cert.sh` (the
/// openssl CLI): each set is a CA of its own and a server certificate it signed.
struct TestCertificates {
    let folder: String
    var ca: String { folder + "/ca.pem" }
    var chain: String { folder + "/server.pem" }
    var key: String { folder + "/server.key" }
    var files: TLSCertificateFiles { TLSCertificateFiles(chain: chain, privateKey: key) }

    /// - Parameter names: the certificate's subject alternative names.
    init(_ label: String, names: String = "DNS:localhost,IP:127.0.0.1") throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
        folder = NSTemporaryDirectory() + "uvws-tls-\(getpid())-\(label)"
        let script = Process()
        script.executableURL = URL(fileURLWithPath: "/bin/bash")
        script.arguments = [repository + "/scripts/make-tls-cert.sh", folder, names]
        script.standardOutput = FileHandle.nullDevice
        try script.run()
        script.waitUntilExit()
        guard script.terminationStatus == 0 else { throw TestError("make-tls-cert.sh failed") }
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }
}

/// Sends `payloads` on open, one after another, and closes once every echo
/// has come back.
final class BurstClient: WebSocketHandler {
    let payloads: [[UInt8]]
    var echoes: [[UInt8]] = []
    var closes: [UInt16] = []
    private var received: [ObjectIdentifier: Int] = [:]

    init(payloads: [[UInt8]]) { self.payloads = payloads }

    func didOpen(_ connection: WebSocketConnection<BurstClient>) {
        for payload in payloads { connection.send(binary: payload) }
    }

    func didReceive(_ connection: WebSocketConnection<BurstClient>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        echoes.append(Array(message))
        // Counted per connection: one handler may serve many.
        let id = ObjectIdentifier(connection)
        received[id, default: 0] += 1
        if received[id] == payloads.count { connection.close(code: .normalClosure) }
    }

    func didClose(_ connection: WebSocketConnection<BurstClient>, code: CloseCode, reason: String) {
        closes.append(code.rawValue)
    }
}

/// The sample's echo, recording each connection's close code.
final class ClosingEchoHandler: WebSocketHandler {
    let closes = Lock<[UInt16]>([])

    func didReceive(_ connection: WebSocketConnection<ClosingEchoHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        connection.send(chunk, type: type, isFinal: isFinal)
    }

    func didClose(_ connection: WebSocketConnection<ClosingEchoHandler>, code: CloseCode, reason: String) {
        closes.withLock { $0.append(code.rawValue) }
    }
}

/// Options for a server that speaks TLS with `certificates`.
func tlsOptions(_ certificates: TestCertificates) -> WebSocketOptions {
    var options = WebSocketOptions()
    options.tls = TLSServerConfiguration(certificate: certificates.files)
    return options
}

/// Client options that trust only `ca`.
func trusting(_ ca: String) -> WebSocketClientOptions {
    var options = WebSocketClientOptions()
    options.tls = TLSClientConfiguration(trust: .certificateAuthorities(file: ca))
    return options
}

/// One wss:// echo of `payloads` through a new client; the connect result
/// and what came back.
func wssEcho(port: Int, host: String = "127.0.0.1", options: WebSocketClientOptions,
             payloads: [[UInt8]] = [Array("hello".utf8)]) throws -> (Result<String?, WebSocketClientError>?, BurstClient) {
    let handler = BurstClient(payloads: payloads)
    let client = try WebSocketClient(handler: handler, options: options)
    var result: Result<String?, WebSocketClientError>?
    client.connect(to: "wss://\(host):\(port)/ws") { result = $0.map { $0.subprotocol } }
    try client.run()
    return (result, handler)
}

/// Runs `loop` until `done` (at most 10 seconds), for a test that drives a
/// client's loop step by step.
func spin(_ loop: EventLoop, until done: () -> Bool) {
    let deadline = Date().addingTimeInterval(10)
    while !done() && Date() < deadline {
        loop.runNoWait()
        usleep(1000)
    }
}
