import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// One libuv loop. Everything but `execute` must be called on the thread that
/// runs the loop; handlers and callbacks all run there.
///
/// `@unchecked Sendable` only so that other threads can reach `execute`, the one
/// door across threads (a `uv_async_t` plus a locked queue), and the thread
/// check that names the rule when it is broken.
public final class EventLoop: @unchecked Sendable {
    @usableFromInline package let raw: UnsafeMutablePointer<uv_loop_t>
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    /// Work posted by other threads; `open` turns false when the loop closes,
    /// under the same lock, so a late `execute` cannot reach the freed handle.
    private let queue = Lock(Queue())
    private struct Queue {
        var work: [() -> Void] = []
        var open = true
    }
    private var closed = false
    /// The thread inside `run`, `runNoWait` or `close` (0: none). Loop-confined
    /// objects compare it with the caller's on every public entry point
    /// (`checkThread`); while no thread runs the loop, any thread may set it up.
    @exclusivity(unchecked) @usableFromInline var runningThread: UInt = 0
    /// Free `uv_write_t`s: a queued write takes one and gives it back in its
    /// callback, so steady-state writes allocate nothing.
    var writeRequests: [UnsafeMutablePointer<uv_write_t>] = []
    /// State that this package's runtime keeps once per loop (its receive ring,
    /// cork and timing wheel), shared by every server and client on the loop.
    /// Loop thread only.
    package var runtimeContext: AnyObject?

    /// A new libuv loop and its wake-up handle; run it on one thread (`run()`).
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

    /// A loop released without `close()` closes itself if nothing is open on
    /// it; one with handles still open is left allocated (a leak, never a
    /// use of freed memory by the handles' owners).
    deinit {
        if !closed { try? close() }
    }

    /// Whether `close()` has run: the loop can no longer be run.
    public var isClosed: Bool { closed }

    /// Runs until `stop()` or until no referenced handle is left. Returns
    /// true if `stop()` ended it with referenced handles still active. Does
    /// nothing once the loop is closed.
    @discardableResult
    public func run() -> Bool {
        if closed { return false }
        return withRunningThread { uv_run(raw, UV_RUN_DEFAULT) != 0 }
    }

    /// Runs one iteration without blocking; true while handles remain active.
    @discardableResult
    public func runNoWait() -> Bool {
        if closed { return false }
        return withRunningThread { uv_run(raw, UV_RUN_NOWAIT) != 0 }
    }

    private func withRunningThread<T>(_ body: () -> T) -> T {
        let previous = runningThread
        runningThread = LoopThread.currentIdentity
        defer { runningThread = previous }
        return body()
    }

    /// Makes `run()` return after the current iteration. Loop thread only.
    public func stop() { uv_stop(raw) }

    /// The loop's cached clock in milliseconds, updated once per iteration.
    @inlinable public var now: UInt64 { uv_now(raw) }

    /// Refreshes `now` from the clock (libuv caches it once per iteration).
    public func updateTime() { uv_update_time(raw) }

    /// Traps, naming the rule, when called on a thread other than the one
    /// running the loop. A load, a compare and a branch: cheap enough for
    /// every public entry point of a loop-confined object, in release builds
    /// too, where a race would otherwise corrupt frames silently.
    @inlinable @inline(__always)
    public func checkThread(_ call: StaticString) {
        let running = runningThread
        if running != 0 && running != UInt(uvws_current_thread()) { wrongThread(call) }
    }

    @usableFromInline @inline(never)
    func wrongThread(_ call: StaticString) -> Never {
        fatalError("\(call) was called on a thread that does not run its loop; loop-confined objects are used on their loop's thread only (from other threads: WebSocketServerGroup's send, close and broadcast, or EventLoop.execute)")
    }

    /// Runs `work` on the loop thread soon. Safe from any thread. Returns
    /// false, dropping `work`, once the loop has closed.
    @discardableResult
    public func execute(_ work: @escaping @Sendable () -> Void) -> Bool {
        queue.withLock { q in
            guard q.open else { return false }
            q.work.append(work)
            // Under the lock, so that `close` cannot free the handle between
            // the check of `open` and the wake-up.
            uv_async_send(wakeup)
            return true
        }
    }

    private func drainQueue() {
        let work = queue.withLock { q -> [() -> Void] in
            let taken = q.work
            q.work.removeAll()
            return taken
        }
        for item in work { item() }
    }

    /// Closes the wake-up handle, runs the loop until every close callback has
    /// fired, and closes the loop. Throws `UVError.busy` if a handle is still
    /// open: that is a leak in the caller, who may close it and call again.
    /// Later calls after a successful one do nothing.
    public func close() throws {
        if closed { return }
        let wasOpen = queue.withLock { q in
            defer { q.open = false }
            return q.open
        }
        if wasOpen {
            drainQueue()
            uv_close(UnsafeMutableRawPointer(wakeup).assumingMemoryBound(to: uv_handle_t.self)) { handle in
                UnsafeMutableRawPointer(handle!).deallocate()
            }
        }
        withRunningThread { _ = uv_run(raw, UV_RUN_DEFAULT) }
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
    /// The value; use it only on the loop it was made for.
    public let value: Value
    /// Wraps `value` to carry it to its loop's thread.
    public init(_ value: Value) { self.value = value }
}
