import CLibUV

/// Runs a callback once per loop iteration, right after the poll phase, where
/// the read callbacks of that iteration have all run (`uv_check_t`). The server
/// flushes its cork here, so the replies to every read of an iteration leave
/// in as few writes as possible.
public final class Check: UVHandle {
    private var callback: (() -> Void)?

    public init(loop: EventLoop) {
        let memory = UnsafeMutablePointer<uv_check_t>.allocate(capacity: 1)
        uv_check_init(loop.raw, memory)
        super.init(loop: loop, memory: memory)
    }

    public func start(_ callback: @escaping () -> Void) {
        self.callback = callback
        uv_check_start(UnsafeMutableRawPointer(rawHandle).assumingMemoryBound(to: uv_check_t.self)) { handle in
            let owner = Unmanaged<Check>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
            owner.callback?()
        }
    }

    public override func didClose() { callback = nil }
}
