import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// One libuv loop. Everything but `execute` must be called on the thread that
/// runs the loop; handlers and callbacks all run there.
///
/// `@unchecked Sendable` only so that other threads can reach `execute`, the one
/// door across threads (a `uv_async_t` plus a locked queue).
public final class EventLoop: @unchecked Sendable {
    @usableFromInline package let raw: UnsafeMutablePointer<uv_loop_t>
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    private let queue = Lock<[() -> Void]>([])
    private var closed = false
    private var wakeupClosed = false
    /// Free `uv_write_t`s: a queued write takes one and gives it back in its
    /// callback, so steady-state writes allocate nothing.
    var writeRequests: [UnsafeMutablePointer<uv_write_t>] = []
    /// State that this package's runtime keeps once per loop (its receive ring,
    /// cork and timing wheel), shared by every server and client on the loop.
    /// Loop thread only.
    package var runtimeContext: AnyObject?

    public init() throws {
        // A write to a socket the peer has reset raises SIGPIPE, which would end
        // the process; libuv leaves that to the application. We want EPIPE.
        signal(SIGPIPE, SIG_IGN)
        raw = .allocate(capacity: 1)
        let rc = uv_loop_init(raw)
        if rc < 0 {
            raw.deallocate()
            throw UVError(rc)
        }
        wakeup = .allocate(capacity: 1)
        uv_async_init(raw, wakeup) { handle in
            let loop = Unmanaged<EventLoop>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
            loop.drainQueue()
        }
        wakeup.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        // The wake-up handle alone must not keep `run()` from returning.
        uv_unref(UnsafeMutableRawPointer(wakeup).assumingMemoryBound(to: uv_handle_t.self))
    }

    deinit {
        assert(closed, "EventLoop released without close()")
    }

    /// Runs until `stop()` or until no referenced handle is left.
    public func run() {
        uv_run(raw, UV_RUN_DEFAULT)
    }

    /// Runs one iteration without blocking; true while handles remain active.
    @discardableResult
    public func runNoWait() -> Bool {
        uv_run(raw, UV_RUN_NOWAIT) != 0
    }

    /// Makes `run()` return after the current iteration. Loop thread only.
    public func stop() { uv_stop(raw) }

    /// The loop's cached clock in milliseconds, updated once per iteration.
    @inlinable public var now: UInt64 { uv_now(raw) }

    public func updateTime() { uv_update_time(raw) }

    /// Runs `work` on the loop thread soon. Safe from any thread.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        queue.withLock { $0.append(work) }
        uv_async_send(wakeup)
    }

    private func drainQueue() {
        let work = queue.withLock { q -> [() -> Void] in
            let taken = q
            q.removeAll()
            return taken
        }
        for item in work { item() }
    }

    /// Closes the wake-up handle, runs the loop until every close callback has
    /// fired, and closes the loop. Throws `UVError.busy` if a handle is still
    /// open: that is a leak in the caller, who may close it and call again.
    /// `execute` must not be called once this has started.
    public func close() throws {
        precondition(!closed)
        if !wakeupClosed {
            drainQueue()
            wakeupClosed = true
            uv_close(UnsafeMutableRawPointer(wakeup).assumingMemoryBound(to: uv_handle_t.self)) { handle in
                UnsafeMutableRawPointer(handle!).deallocate()
            }
        }
        uv_run(raw, UV_RUN_DEFAULT)
        let rc = uv_loop_close(raw)
        if rc < 0 { throw UVError(rc) }
        for request in writeRequests { request.deallocate() }
        writeRequests.removeAll()
        raw.deallocate()
        closed = true
    }

    func takeWriteRequest() -> UnsafeMutablePointer<uv_write_t> {
        writeRequests.popLast() ?? .allocate(capacity: 1)
    }

    func returnWriteRequest(_ request: UnsafeMutablePointer<uv_write_t>) {
        if writeRequests.count < 1024 { writeRequests.append(request) } else { request.deallocate() }
    }
}

/// Carries a loop-confined value through `EventLoop.execute` to the loop thread.
/// It is unchecked: only the closure that runs on the loop may use `value`.
public struct LoopBound<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
