import CLibUV

/// A libuv timer. The callback is a closure set once, not per tick.
public final class Timer: UVHandle {
    private var callback: (() -> Void)?

    /// A timer on `loop`, not yet started.
    public init(loop: EventLoop) {
        let memory = UnsafeMutablePointer<uv_timer_t>.allocate(capacity: 1)
        uv_timer_init(loop.raw, memory)
        super.init(loop: loop, memory: memory)
    }

    private var timer: UnsafeMutablePointer<uv_timer_t> {
        UnsafeMutableRawPointer(rawHandle).assumingMemoryBound(to: uv_timer_t.self)
    }

    /// Fires after `timeout` ms, then every `repeat` ms if it is not 0.
    public func start(timeout: UInt64, repeat: UInt64 = 0, _ callback: @escaping () -> Void) {
        self.callback = callback
        uv_timer_start(timer, { handle in
            let owner = Unmanaged<Timer>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
            owner.callback?()
        }, timeout, `repeat`)
    }

    /// Stops the timer (start it again with `start`).
    public func stop() { uv_timer_stop(timer) }

    /// Lets go of the callback once the handle is closed.
    public override func didClose() { callback = nil }
}
