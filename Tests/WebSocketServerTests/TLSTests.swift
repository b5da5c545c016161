import Foundation
import Testing
import TLSKit
import UVKit
import WebSocketClient
import WebSocketServer
#if canImport(Glibc)
import Glibc
#endif

@Suite("TLS: wss:// and https:// over 127.0.0.1", .serialized)
struct TLSTests {
    @Test("the client and the server echo over wss://, from empty to 1 MiB, and close with 1000")
    func echoSizes() throws {
        let certificates = try TestCertificates("echo")
        defer { certificates.remove() }
        let harness = try ServerHarness(options: tlsOptions(certificates), handler: EchoHandler())
        defer { harness.stop() }
        let payloads = [0, 1, 125, 16 * 1024, 70_000, 1 << 20].map { size in (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) } }
        for host in ["127.0.0.1", "localhost"] {
            let (result, handler) = try wssEcho(port: harness.port, host: host, options: trusting(certificates.ca),
                                                payloads: payloads)
            guard case .success = result else {
                Issue.record("connect to \(host) failed: \(String(describing: result))")
                continue
            }
            #expect(handler.echoes == payloads)
            #expect(handler.closes == [1000])
        }
        #expect(harness.metrics.webSocketsOpened == 2)
        // OpenSSL's record buffers came back to this thread's list (the
        // client's loop ran here) and were taken from it again.
        #expect(TLSContext.recordBufferPoolInstalled)
        #expect(TLSContext.recordBuffersReused > 0)
    }

    @Test("an untrusted chain, a certificate for another host and a server that is not TLS are three distinct errors")
    func verificationErrors() throws {
        let good = try TestCertificates("verify-good")
        let stranger = try TestCertificates("verify-stranger")
        let elsewhere = try TestCertificates("verify-elsewhere", names: "DNS:elsewhere.test")
        defer { [good, stranger, elsewhere].forEach { $0.remove() } }

        let server = try ServerHarness(options: tlsOptions(good), handler: EchoHandler())
        defer { server.stop() }
        // Trusting another CA: the chain leads nowhere.
        let (untrusted, _) = try wssEcho(port: server.port, options: trusting(stranger.ca))
        guard case .certificateUntrusted(let why)? = failureOf(untrusted) else {
            Issue.record("expected certificateUntrusted, got \(String(describing: untrusted))")
            return
        }
        #expect(why.contains("issuer"))
        // The system store does not know the test CA either.
        let (system, _) = try wssEcho(port: server.port, options: WebSocketClientOptions())
        #expect({ if case .certificateUntrusted? = failureOf(system) { true } else { false } }())

        // Trusted, but issued to elsewhere.test: both a name and an address mismatch.
        let wrongHost = try ServerHarness(options: tlsOptions(elsewhere), handler: EchoHandler())
        defer { wrongHost.stop() }
        for host in ["localhost", "127.0.0.1"] {
            let (mismatch, _) = try wssEcho(port: wrongHost.port, host: host, options: trusting(elsewhere.ca))
            guard case .hostnameMismatch(let name, _)? = failureOf(mismatch) else {
                Issue.record("expected hostnameMismatch for \(host), got \(String(describing: mismatch))")
                continue
            }
            #expect(name == host)
        }
        // Checking switched off: the same server is accepted.
        var anything = WebSocketClientOptions()
        anything.tls = TLSClientConfiguration(trust: .acceptAnyCertificate)
        let (accepted, handler) = try wssEcho(port: wrongHost.port, options: anything)
        #expect({ if case .success = accepted { true } else { false } }())
        #expect(handler.echoes == [Array("hello".utf8)])

        // wss:// to a plain server: its 400 is no ServerHello.
        let plain = try ServerHarness(handler: EchoHandler())
        defer { plain.stop() }
        let (notTLS, _) = try wssEcho(port: plain.port, options: trusting(good.ca))
        #expect({ if case .tlsHandshakeFailed? = failureOf(notTLS) { true } else { false } }())
        // A CA file that does not exist is the client's configuration error.
        let (missing, _) = try wssEcho(port: server.port, options: trusting("/nonexistent/ca.pem"))
        #expect({ if case .tlsConfiguration? = failureOf(missing) { true } else { false } }())
    }

    @Test("plain HTTP, garbage and stalled handshakes on the TLS port close only their connection")
    func badInputLosesNothingElse() throws {
        let certificates = try TestCertificates("bad-input")
        defer { certificates.remove() }
        var options = tlsOptions(certificates)
        options.handshakeTimeout = .milliseconds(300)
        let handler = ClosingEchoHandler()
        let harness = try ServerHarness(options: options, handler: handler)
        defer { harness.stop() }

        // An established connection that must outlive everything below.
        let survivor = BurstClient(payloads: [])
        let client = try WebSocketClient(handler: survivor, options: trusting(certificates.ca))
        var survivorConnection: WebSocketConnection<BurstClient>?
        client.connect(to: "wss://127.0.0.1:\(harness.port)/ws") { survivorConnection = try? $0.get() }
        spin(client.loop) { survivorConnection != nil || client.connectionCount == 0 }
        #expect(survivorConnection?.isOpen == true)

        let inputs: [(String, [UInt8])] = [
            ("plain HTTP", Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)),
            ("garbage", (0..<4096).map { _ in UInt8.random(in: 0...255) }),
            ("a record header and no more", [0x16, 0x03, 0x01, 0x02, 0x00]),
            ("nothing", []),
        ]
        for (name, bytes) in inputs {
            let raw = try RawClient(port: harness.port)
            if !bytes.isEmpty { try raw.send(bytes) }
            #expect(raw.waitForClose(timeout: 5), "\(name): the server kept the connection")
        }

        // A peer that vanishes without close_notify: its handler hears 1006.
        let vanishing = BurstClient(payloads: [])
        let other = try WebSocketClient(handler: vanishing, options: trusting(certificates.ca))
        other.connect(to: "wss://127.0.0.1:\(harness.port)/ws") { result in
            if case .success(let connection) = result { connection.abort() }
        }
        try other.run()
        let deadline = Date().addingTimeInterval(5)
        while !handler.closes.withLock({ $0.contains(1006) }) && Date() < deadline { usleep(10_000) }
        #expect(handler.closes.withLock { $0 } == [1006])

        // The first connection still echoes.
        survivorConnection?.send(text: "still here")
        spin(client.loop) { !survivor.echoes.isEmpty || client.connectionCount == 0 }
        #expect(survivor.echoes == [Array("still here".utf8)])
        client.shutdown()
        try client.run()
        #expect(harness.metrics.handshakesRejected >= 4)
    }

    @Test("reloadCertificates: new connections get the new certificate; a bad file keeps the old one")
    func reload() throws {
        let first = try TestCertificates("reload-first")
        let second = try TestCertificates("reload-second")
        let live = try TestCertificates("reload-live")
        defer { [first, second, live].forEach { $0.remove() } }
        let manager = FileManager.default
        func install(_ source: TestCertificates) throws {
            for (from, to) in [(source.chain, live.chain), (source.key, live.key)] {
                try? manager.removeItem(atPath: to)
                try manager.copyItem(atPath: from, toPath: to)
            }
        }
        try install(first)
        let harness = try ServerHarness(options: tlsOptions(live), handler: EchoHandler())
        defer { harness.stop() }
        let (before, _) = try wssEcho(port: harness.port, options: trusting(second.ca))
        #expect({ if case .certificateUntrusted? = failureOf(before) { true } else { false } }())

        try install(second)
        try harness.server.reloadCertificates()
        let (after, handler) = try wssEcho(port: harness.port, options: trusting(second.ca))
        #expect({ if case .success = after { true } else { false } }())
        #expect(handler.echoes.count == 1)

        // A key that does not match: the reload throws, the second stays.
        try manager.removeItem(atPath: live.key)
        try manager.copyItem(atPath: first.key, toPath: live.key)
        #expect(throws: WebSocketServerError.self) { try harness.server.reloadCertificates() }
        let (still, _) = try wssEcho(port: harness.port, options: trusting(second.ca))
        #expect({ if case .success = still { true } else { false } }())
    }

    @Test("SNI: a host name with a certificate of its own gets it; others get the default")
    func serverNameIndication() throws {
        let fallback = try TestCertificates("sni-default")
        let named = try TestCertificates("sni-named", names: "DNS:localhost")
        defer { [fallback, named].forEach { $0.remove() } }
        var options = tlsOptions(fallback)
        options.tls?.hostCertificates = ["localhost": named.files]
        let harness = try ServerHarness(options: options, handler: EchoHandler())
        defer { harness.stop() }
        // "localhost" is sent as SNI and picks the named certificate...
        let (byName, _) = try wssEcho(port: harness.port, host: "localhost", options: trusting(named.ca))
        #expect({ if case .success = byName { true } else { false } }())
        // ...an address sends none and gets the default.
        let (byAddress, _) = try wssEcho(port: harness.port, host: "127.0.0.1", options: trusting(named.ca))
        #expect({ if case .certificateUntrusted? = failureOf(byAddress) { true } else { false } }())
        let (defaultTrusted, _) = try wssEcho(port: harness.port, host: "127.0.0.1", options: trusting(fallback.ca))
        #expect({ if case .success = defaultTrusted { true } else { false } }())
    }

    @Test("a flood of handshakes waits its turn (16 per iteration) and every one completes")
    func handshakeFlood() throws {
        let certificates = try TestCertificates("flood")
        defer { certificates.remove() }
        let harness = try ServerHarness(options: tlsOptions(certificates), handler: EchoHandler())
        defer { harness.stop() }
        let count = 200
        let handler = BurstClient(payloads: [Array("x".utf8)])
        var options = trusting(certificates.ca)
        options.handshakeTimeout = .seconds(30)
        let client = try WebSocketClient(handler: handler, options: options)
        var opened = 0
        var failures: [WebSocketClientError] = []
        // The server's loop is held while every ClientHello arrives, so its
        // next iteration finds all of them at once.
        let held = DispatchSemaphore(value: 0)
        harness.server.loop.execute {
            held.signal()
            usleep(300_000)
        }
        held.wait()
        for _ in 0..<count {
            client.connect(to: "wss://127.0.0.1:\(harness.port)/ws") { result in
                switch result {
                case .success: opened += 1
                case .failure(let error): failures.append(error)
                }
            }
        }
        try client.run()
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        #expect(opened == count)
        #expect(handler.echoes.count == count)
        #expect(harness.metrics.tlsHandshakesDeferred > 0)
    }
}
