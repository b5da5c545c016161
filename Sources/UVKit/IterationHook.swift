import CLibUV

/// Runs a callback once per loop iteration, on either side of the poll phase.
///
/// - `afterPoll` (`uv_check_t`): the read callbacks of the iteration have all
///   run. The runtime flushes its cork here, so the replies to every read of
///   an iteration leave in as few writes as possible.
/// - `beforePoll` (`uv_prepare_t`): the loop is about to wait. Reading that
///   resumes here is in the very next poll (TLS handshakes held back by the
///   per-iteration cap start again here).
public final class IterationHook: UVHandle {
    /// When in the loop's iteration the hook runs.
    public enum Phase {
        case beforePoll
        case afterPoll
    }

    private let phase: Phase
    private var callback: (() -> Void)?

    /// A hook on `loop`, not yet started.
    public init(loop: EventLoop, phase: Phase) {
        self.phase = phase
        switch phase {
        case .afterPoll:
            let memory = UnsafeMutablePointer<uv_check_t>.allocate(capacity: 1)
            uv_check_init(loop.raw, memory)
            super.init(loop: loop, memory: memory)
        case .beforePoll:
            let memory = UnsafeMutablePointer<uv_prepare_t>.allocate(capacity: 1)
            uv_prepare_init(loop.raw, memory)
            super.init(loop: loop, memory: memory)
        }
    }

    /// Runs `callback` in every iteration at this hook's phase until stopped or closed.
    public func start(_ callback: @escaping () -> Void) {
        self.callback = callback
        switch phase {
        case .afterPoll:
            uv_check_start(UnsafeMutableRawPointer(rawHandle).assumingMemoryBound(to: uv_check_t.self)) { handle in
                Unmanaged<IterationHook>.fromOpaque(handle!.pointee.data).takeUnretainedValue().callback?()
            }
        case .beforePoll:
            uv_prepare_start(UnsafeMutableRawPointer(rawHandle).assumingMemoryBound(to: uv_prepare_t.self)) { handle in
                Unmanaged<IterationHook>.fromOpaque(handle!.pointee.data).takeUnretainedValue().callback?()
            }
        }
    }

    /// Lets go of the callback (and what it captured) once the handle is closed.
    public override func didClose() { callback = nil }
}
