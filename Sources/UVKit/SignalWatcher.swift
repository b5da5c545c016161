import CLibUV

/// Delivers a POSIX signal on the loop thread, where it is safe to act on it.
public final class SignalWatcher: UVHandle {
    private var callback: ((Int32) -> Void)?

    /// A signal watcher on `loop`, not yet started.
    public init(loop: EventLoop) {
        let memory = UnsafeMutablePointer<uv_signal_t>.allocate(capacity: 1)
        uv_signal_init(loop.raw, memory)
        super.init(loop: loop, memory: memory)
    }

    private var signal: UnsafeMutablePointer<uv_signal_t> {
        UnsafeMutableRawPointer(rawHandle).assumingMemoryBound(to: uv_signal_t.self)
    }

    /// Calls `callback` on the loop thread each time signal `number` arrives.
    public func start(signal number: Int32, _ callback: @escaping (Int32) -> Void) throws {
        self.callback = callback
        try UVError.check(uv_signal_start(signal, { handle, signum in
            let owner = Unmanaged<SignalWatcher>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
            owner.callback?(signum)
        }, number))
    }

    /// Stops watching (the handle stays open until `close()`).
    public func stop() { uv_signal_stop(signal) }

    /// Lets go of the callback once the handle is closed.
    public override func didClose() { callback = nil }
}
