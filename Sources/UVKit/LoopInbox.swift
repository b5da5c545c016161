import CLibUV

/// The door into one loop from any thread: records, each a fixed `Header`
/// and a payload of bytes, appended to a buffer under a lock and handed to
/// `receive` on the loop thread, in order, one batch per wake-up.
///
/// No closure is made and, once the two buffers have grown to the traffic,
/// nothing is allocated per record: a producer copies its header and payload
/// into the pending buffer; the loop swaps that buffer for its emptied spare
/// under the lock (once per batch) and reads the records without it. Only the
/// record that finds the buffer empty wakes the loop (`uv_async_send`), so a
/// burst from many threads costs one wake-up.
///
/// The payload is copied because a caller's buffer lives only for its call.
/// What a record refers to beyond its bytes (a retained object, a descriptor)
/// is the header's business: `receive` gets every record posted, including
/// those still pending when the inbox closes, so it can always let go.
/// `Sendable` unchecked: `post` touches the pending buffer under the lock
/// only; everything else runs on the loop thread.
public final class LoopInbox<Header: BitwiseCopyable>: LoopWakeTarget, @unchecked Sendable {
    private struct Pending {
        var bytes: [UInt8] = []
        var open = true
    }

    private let pending = Lock(Pending())
    private let async: UnsafeMutablePointer<uv_async_t>
    /// Loop thread only: the batch being read (the previous pending buffer).
    private var batch: [UInt8] = []
    private let receive: (Header, UnsafeRawBufferPointer) -> Void
    private let batchEnded: () -> Void
    private var closed = false
    private var draining = false
    private var closeRequested = false
    /// Bytes pending past which `post` refuses: a loop that cannot keep up
    /// must not take the process's memory with it.
    public let limit: Int

    static var headerSize: Int { MemoryLayout<Header>.size }
    static var recordPrefix: Int { headerSize + MemoryLayout<Int>.size }
    /// A buffer that grew past this in a burst shrinks back to it once read:
    /// bursts up to this size reuse the buffers (no allocation), and a loop
    /// keeps at most twice this between bursts.
    static var keptCapacity: Int { 4 << 20 }

    /// - Parameters:
    ///   - loop: the loop whose thread receives the records.
    ///   - limit: bytes waiting past which `post` refuses (returns false).
    ///   - keepsLoopAlive: while open, the inbox alone keeps `run()` going (a
    ///     loop whose only work comes from other threads).
    ///   - receive: called on the loop thread for each record; the payload is
    ///     valid only during the call.
    ///   - batchEnded: called after the last record of a batch (to write what
    ///     the batch corked).
    public convenience init(loop: EventLoop, limit: Int, keepsLoopAlive: Bool,
                            receive: @escaping (Header, UnsafeRawBufferPointer) -> Void,
                            batchEnded: @escaping () -> Void = {}) {
        self.init(raw: loop.raw, limit: limit, keepsLoopAlive: keepsLoopAlive, receive: receive, batchEnded: batchEnded)
    }

    /// On a loop by its libuv handle: the loop's own inbox is made inside
    /// `EventLoop.init`, before the loop object is whole.
    init(raw: UnsafeMutablePointer<uv_loop_t>, limit: Int, keepsLoopAlive: Bool,
         receive: @escaping (Header, UnsafeRawBufferPointer) -> Void,
         batchEnded: @escaping () -> Void = {}) {
        self.limit = limit
        self.receive = receive
        self.batchEnded = batchEnded
        async = .allocate(capacity: 1)
        super.init()
        uv_async_init(raw, async) { handle in
            Unmanaged<LoopWakeTarget>.fromOpaque(handle!.pointee.data).takeUnretainedValue().wake()
        }
        async.pointee.data = Unmanaged.passUnretained(self as LoopWakeTarget).toOpaque()
        if !keepsLoopAlive { uv_unref(UnsafeMutableRawPointer(async).assumingMemoryBound(to: uv_handle_t.self)) }
    }

    /// An inbox released open closes here: the records still pending are
    /// handed to `receive`, which lets go of what they hold.
    deinit {
        if !closed { close() }
    }

    /// Appends a record; any thread. False when the inbox is closed or past
    /// its limit: nothing was posted. A `control` record (a shutdown, a
    /// request for figures) is taken past the limit: a flood of messages
    /// must not keep the loop from being stopped.
    @discardableResult
    public func post(_ header: Header, payload: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                     control: Bool = false) -> Bool {
        pending.withLock { state in
            guard state.open else { return false }
            guard control || state.bytes.count &+ Self.recordPrefix &+ payload.count <= limit else { return false }
            let wasEmpty = state.bytes.isEmpty
            withUnsafeBytes(of: header) { state.bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: payload.count) { state.bytes.append(contentsOf: $0) }
            if payload.count > 0 { state.bytes.append(contentsOf: payload) }
            // Under the lock, so that `close` cannot free the handle between
            // the check of `open` and the wake-up.
            if wasEmpty { uv_async_send(async) }
            return true
        }
    }

    /// Bytes waiting to be read (for tests and metrics).
    public var pendingBytes: Int { pending.withLock { $0.bytes.count } }

    override func wake() { drain() }

    private func drain() {
        pending.withLock { swap(&$0.bytes, &batch) }
        if batch.isEmpty { return }
        draining = true
        batch.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let header = raw.loadUnaligned(fromByteOffset: offset, as: Header.self)
                let length = raw.loadUnaligned(fromByteOffset: offset &+ Self.headerSize, as: Int.self)
                let start = offset &+ Self.recordPrefix
                receive(header, UnsafeRawBufferPointer(rebasing: raw[start..<(start &+ length)]))
                offset = start &+ length
            }
        }
        if batch.capacity > Self.keptCapacity {
            batch = []
            batch.reserveCapacity(Self.keptCapacity)
        } else {
            batch.removeAll(keepingCapacity: true)
        }
        draining = false
        batchEnded()
        // A record's work closed the inbox (the shutdown that ended the
        // loop's last connection): finish that now that the batch is read.
        if closeRequested { close() }
    }

    /// Refuses further records, hands over those still pending, and closes
    /// the wake-up handle. Loop thread only; from a record's `receive` too,
    /// when the rest of its batch is read first.
    public func close() {
        if closed { return }
        pending.withLock { $0.open = false }
        if draining {
            closeRequested = true
            return
        }
        drain()
        if closed { return }
        closed = true
        uv_close(UnsafeMutableRawPointer(async).assumingMemoryBound(to: uv_handle_t.self)) { handle in
            UnsafeMutableRawPointer(handle!).deallocate()
        }
    }
}

/// What a wake-up handle's C callback reaches: a C function pointer cannot
/// capture the inbox's generic parameter, so the call goes through this.
public class LoopWakeTarget {
    func wake() {}
}
