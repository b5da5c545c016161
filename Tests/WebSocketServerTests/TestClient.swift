import Foundation
import WebSocketCore
#if canImport(Glibc)
import Glibc
#endif

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A blocking TCP client on 127.0.0.1 for tests.
// Unchecked: a test hands a client to at most one other thread at a time
// (a sender thread writes while the test's thread reads); a socket's send
// and recv do not share state, and the ring and state machine are touched by
// the reading thread only.
class RawClient: @unchecked Sendable {
    let fd: Int32

    init(port: Int, host: String = "127.0.0.1", timeout: Double = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket: \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw TestError("connect: \(errno)") }
        setTimeout(timeout)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    func setTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { throw TestError("send failed: \(errno)") }
            offset += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Some bytes, or [] at end of file. Throws on timeout.
    func receive(max: Int = 65536) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, max, 0) }
        if n < 0 {
            if errno == ECONNRESET { return [] }
            throw TestError("recv failed: errno \(errno)")
        }
        return Array(buffer[0..<n])
    }

    /// Reads until the peer closes; returns everything.
    func receiveAll() throws -> [UInt8] {
        var all: [UInt8] = []
        while true {
            let chunk = try receive()
            if chunk.isEmpty { return all }
            all += chunk
        }
    }

    /// True if the server closed the connection (EOF or reset) within `timeout`.
    func waitForClose(timeout: Double) -> Bool {
        setTimeout(timeout)
        while true {
            guard let chunk = try? receive() else { return false }
            if chunk.isEmpty { return true }
        }
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

/// A blocking test peer in the client role. It sends whatever frames a test
/// builds (well-formed or not: it is the misbehaving peer when a test needs
/// one), and receives through the protocol's own state machine
/// (`WebSocketStateMachine`), so it keeps no protocol logic of its own: a
/// ping is reported (`.ping`) for the test to answer or not, and the peer's
/// close (or a failure) ends with `.close`.
final class TestClient: RawClient, @unchecked Sendable {
    enum Event: Equatable {
        case message(MessageType, [UInt8])
        case ping([UInt8])
        case pong([UInt8])
        case close(UInt16, String)
        case eof
    }

    var ring = ByteRing(capacity: 1 << 16)
    var machine = WebSocketStateMachine(role: .client, maxMessageSize: .max)
    var keys = MaskKeyGenerator()
    var partial: [UInt8] = []
    private(set) var responseHead: HTTPHead?

    init(port: Int, path: String = "/ws", subprotocols: [String] = [], origin: String? = nil,
         extraRequestBytes: [UInt8] = [], timeout: Double = 10) throws {
        try super.init(port: port, timeout: timeout)
        let key = AcceptKey.makeKey()
        let request = ClientHandshake.request(host: "127.0.0.1:\(port)", path: path, key: key,
                                              subprotocols: subprotocols, origin: origin)
        try send(Array(request.utf8) + extraRequestBytes)
        var received: [UInt8] = []
        while true {
            let chunk = try receive()
            if chunk.isEmpty { throw TestError("closed during handshake: \(String(decoding: received, as: UTF8.self))") }
            received += chunk
            let result = received.withUnsafeBytes { HTTPHeadParser.parse($0) }
            if case .complete(let head, let length) = result {
                responseHead = head
                if case .failure(let e) = ClientHandshake.validate(head, key: key, offered: subprotocols) {
                    throw TestError("handshake: \(e) \(head.startLine)")
                }
                received.withUnsafeBytes { _ = ring.write(UnsafeRawBufferPointer(rebasing: $0[length...])) }
                return
            }
            if case .failure(let e) = result { throw TestError("bad response head \(e)") }
        }
    }

    deinit {
        ring.deallocate()
        keys.deallocate()
    }

    func sendFrame(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true) throws {
        try send(encodeFrame(opcode, payload, fin: fin))
    }

    func encodeFrame(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: payload.count + 14)
        let n = payload.withUnsafeBytes { p in
            out.withUnsafeMutableBytes { FrameWriter.writeFrame(into: $0.baseAddress!, opcode: opcode, fin: fin, payload: p, maskKey: keys.next()) }
        }
        return Array(out[0..<n])
    }

    func sendText(_ text: String) throws { try sendFrame(.text, Array(text.utf8)) }

    func sendClose(_ code: UInt16, _ reason: String = "") throws {
        try sendFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }

    /// The next message or control frame (data chunks are joined).
    func next() throws -> Event {
        while true {
            switch machine.receive(&ring, now: 0) {
            case .message(let chunk, let type, let isFinal):
                partial += chunk
                if isFinal {
                    defer { partial = [] }
                    return .message(type, partial)
                }
                continue
            case .sendPong(let p): return .ping(Array(p))
            case .pong(let p, _): return .pong(Array(p))
            case .closed(let code, let reason, _): return .close(code.rawValue, String(decoding: reason, as: UTF8.self))
            case .needMoreData:
                break
            }
            let region = ring.writableRegion
            let n = recv(fd, region.baseAddress!, region.count, 0)
            if n == 0 || (n < 0 && errno == ECONNRESET) { return .eof }
            if n < 0 { throw TestError("recv: errno \(errno)") }
            ring.commitWrite(n)
        }
    }

    /// The next data message, answering nothing and skipping control frames
    /// other than close.
    func nextMessage() throws -> Event {
        while true {
            let e = try next()
            switch e {
            case .ping, .pong: continue
            default: return e
            }
        }
    }
}
