import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// One libuv loop. Everything but `execute` must be called on the thread that
/// runs the loop; handlers and callbacks all run there.
///
/// `@unchecked Sendable` only so that other threads can reach `execute` and
/// the thread check that names the rule when it is broken. `execute` goes
/// through a `LoopInbox`, the one door into a loop from other threads that a
/// server group's commands use too: a record per closure, batched per wake-up.
public final class EventLoop: @unchecked Sendable {
    @usableFromInline package let raw: UnsafeMutablePointer<uv_loop_t>
    /// Closures posted by `execute`, each a retained `PostedWork` whose
    /// address is the record. Set once in `init`, before any other thread can
    /// see the loop; closed (pending work run first) by `close()`.
    private var inbox: LoopInbox<UnsafeMutableRawPointer>!
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
        // Its wake-up handle alone must not keep `run()` from returning.
        inbox = LoopInbox(raw: raw, limit: .max, keepsLoopAlive: false) { work, _ in
            Unmanaged<PostedWork>.fromOpaque(work).takeRetainedValue().run()
        }
    }

    /// A loop released without `close()` closes itself if nothing is open on
    /// it; one with handles still open is left allocated (a leak, never a
    /// use of freed memory by the handles' owners).
    deinit {
        // No inbox: `init` failed before the loop existed, and freed it.
        if !closed && inbox != nil { try? close() }
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
        let posted = Unmanaged.passRetained(PostedWork(work))
        if inbox.post(posted.toOpaque(), control: true) { return true }
        posted.release()
        return false
    }

    /// Closes the wake-up handle, runs the loop until every close callback has
    /// fired, and closes the loop. Throws `UVError.busy` if a handle is still
    /// open: that is a leak in the caller, who may close it and call again.
    /// Later calls after a successful one do nothing.
    public func close() throws {
        if closed { return }
        // Runs what is still posted, refuses more, and closes its handle.
        inbox.close()
        withRunningThread { _ = uv_run(raw, UV_RUN_DEFAULT) }
        let rc = uv_loop_close(raw)
        if rc < 0 { throw UVError(rc) }
        for request in writeRequests { request.deallocate() }
        writeRequests.removeAll()
        raw.deallocate()
        closed = true
    }

    /// The handles still open on this loop, each by libuv's type name and
    /// marked when unreferenced or closing: what a `close()` that threw
    /// `EBUSY` found (for a test's or a log's diagnosis). Loop thread only.
    package func openHandles() -> [String] {
        var names: [String] = []
        withUnsafeMutablePointer(to: &names) { pointer in
            uv_walk(raw, { handle, argument in
                guard let handle, let argument else { return }
                let name = uv_handle_type_name(uv_handle_get_type(handle)).map { String(cString: $0) } ?? "?"
                let marks = (uv_has_ref(handle) == 0 ? " unref" : "") + (uv_is_closing(handle) != 0 ? " closing" : "")
                argument.assumingMemoryBound(to: [String].self).pointee.append(name + marks)
            }, pointer)
        }
        return names
    }

    /// A write request from the loop's pool (a new one when it is empty).
    package func takeWriteRequest() -> UnsafeMutablePointer<uv_write_t> {
        writeRequests.popLast() ?? .allocate(capacity: 1)
    }

    /// Gives a write request back to the pool once its callback has run.
    package func returnWriteRequest(_ request: UnsafeMutablePointer<uv_write_t>) {
        if writeRequests.count < 1024 { writeRequests.append(request) } else { request.deallocate() }
    }
}

/// A closure on its way through the loop's inbox.
private final class PostedWork {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Carries a loop-confined value through `EventLoop.execute` to the loop thread.
/// It is unchecked: only the closure that runs on the loop may use `value`.
public struct LoopBound<Value>: @unchecked Sendable {
    /// The value; use it only on the loop it was made for.
    public let value: Value
    /// Wraps `value` to carry it to its loop's thread.
    public init(_ value: Value) { self.value = value }
}
