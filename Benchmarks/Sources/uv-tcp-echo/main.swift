import UVKit
#if canImport(Glibc)
import Glibc
#endif

// A raw TCP echo on libuv through UVKit: what a WebSocket echo would cost with
// no framing, masking or handshake. It reads into one buffer per connection
// and writes back with uv_try_write, queueing only what the kernel refuses and
// pausing reads meanwhile. Usage: uv-tcp-echo PORT

final class EchoStream: TCPStream {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    var pending: UnsafeMutableRawBufferPointer?

    override func readBuffer() -> UnsafeMutableRawBufferPointer { buffer }

    override func didRead(_ count: Int) {
        guard count > 0 else { return }
        let bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<count])
        do {
            let n = try tryWrite(bytes)
            if n < count {
                let rest = UnsafeMutableRawBufferPointer.allocate(byteCount: count - n, alignment: 16)
                rest.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[n...]))
                pending = rest
                stopReading()
                try write(UnsafeRawBufferPointer(rest))
            }
        } catch {
            close()
        }
    }

    override func didCompleteWrite(_ error: UVError?) {
        pending?.deallocate()
        pending = nil
        if error == nil && !isClosing { try? startReading() }
    }

    override func didReachEnd(_ error: UVError?) { close() }

    override func didClose() {
        buffer.deallocate()
        alive[ObjectIdentifier(self)] = nil
    }
}

// The open streams, owned here from accept to their close callback.
nonisolated(unsafe) var alive: [ObjectIdentifier: EchoStream] = [:]

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 9002 : 9002
let loop = try EventLoop()
let listener = TCPListener(loop: loop)
try listener.bind(SocketAddress(host: "127.0.0.1", port: port))
try listener.listen { _ in
    let stream = EchoStream(loop: loop)
    do {
        try stream.accept(from: listener)
        stream.setNoDelay(true)
        try stream.startReading()
        alive[ObjectIdentifier(stream)] = stream
    } catch {
        stream.close()
    }
}
let sigterm = SignalWatcher(loop: loop)
try sigterm.start(signal: SIGTERM) { _ in
    listener.close()
    sigterm.close()
    for stream in alive.values { stream.close() }
}
print("listening on 127.0.0.1:\(port)")
fflush(nil)
loop.run()
alive.removeAll()
try loop.close()
