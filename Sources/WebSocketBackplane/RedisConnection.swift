import CHiredis
import UVKit

/// What a Redis connection tells its owner, on the loop thread.
protocol RedisConnectionDelegate: AnyObject {
    func redisConnected(_ connection: RedisConnection)
    func redisReply(_ connection: RedisConnection, _ reply: RedisReply)
    /// The connection failed or ended; it is closing and will not be used again.
    func redisLost(_ connection: RedisConnection, reason: String)
}

/// One TCP connection to Redis on a loop: RESP commands out through one write
/// at a time (commands made meanwhile gather behind it, so a burst of
/// publications leaves in few writes), replies in through hiredis' reader.
///
/// Its owner holds it while open and lets go after `close()`; the handle's
/// rules are UVKit's (freed in the close callback).
final class RedisConnection: TCPStream {
    weak var delegate: RedisConnectionDelegate?
    private let reader: RESPReader?
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    /// Commands not yet handed to libuv.
    private var pending: [UInt8] = []
    /// The bytes of the write in flight: libuv holds them until its callback.
    private var inFlight: UnsafeMutableRawBufferPointer?
    private(set) var isConnected = false
    private var lost = false

    override init(loop: EventLoop) {
        reader = RESPReader()
        super.init(loop: loop)
    }

    /// Appends a command; it leaves with the next write.
    func send(_ arguments: [String]) {
        RESP.appendCommand(arguments, to: &pending)
        flush()
    }

    func send(_ arguments: [UnsafeRawBufferPointer]) {
        RESP.appendCommand(arguments, to: &pending)
        flush()
    }

    /// `COMMAND key head+payload`, the last argument from its two parts
    /// without joining them first.
    func sendParts(command: String, key: UnsafeRawBufferPointer, head: UnsafeRawBufferPointer,
                   payload: UnsafeRawBufferPointer) {
        var name = command
        name.withUTF8 { RESP.appendCommand(UnsafeRawBufferPointer($0), key, head, payload, to: &pending) }
        flush()
    }

    private func flush() {
        guard isConnected, !lost, inFlight == nil, !pending.isEmpty else { return }
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: pending.count, alignment: 1)
        pending.withUnsafeBytes { bytes.copyMemory(from: $0) }
        pending.removeAll(keepingCapacity: true)
        inFlight = bytes
        do {
            try write(UnsafeRawBufferPointer(bytes))
        } catch {
            inFlight = nil
            bytes.deallocate()
            fail("write failed: \(error)")
        }
    }

    override func didCompleteWrite(_ error: UVError?) {
        inFlight?.deallocate()
        inFlight = nil
        if let error {
            fail("write failed: \(error)")
            return
        }
        flush()
    }

    override func didConnect(_ error: UVError?) {
        if let error {
            fail("cannot connect: \(error)")
            return
        }
        guard reader != nil else { return fail("cannot make a RESP reader (out of memory)") }
        setNoDelay(true)
        do { try startReading() } catch { return fail("cannot read: \(error)") }
        isConnected = true
        delegate?.redisConnected(self)
        flush()
    }

    override func readBuffer() -> UnsafeMutableRawBufferPointer { input }

    override func didRead(_ count: Int) {
        guard let reader, !lost else { return }
        let ok = reader.feed(UnsafeRawBufferPointer(rebasing: input[..<count])) { reply in
            if !lost { delegate?.redisReply(self, reply) }
        }
        if !ok { fail("the server's bytes are not RESP") }
    }

    override func didReachEnd(_ error: UVError?) {
        fail(error.map { "connection failed: \($0)" } ?? "the server closed the connection")
    }

    /// Ends the connection and tells the owner once.
    func fail(_ reason: String) {
        if lost { return }
        lost = true
        isConnected = false
        stopReading()
        close()
        delegate?.redisLost(self, reason: reason)
    }

    /// Closes without telling the owner (it is going away).
    func shut() {
        lost = true
        isConnected = false
        close()
    }

    override func didClose() {
        inFlight?.deallocate()
        inFlight = nil
        input.deallocate()
    }
}
