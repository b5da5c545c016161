import CLibUV

/// Base of every handle wrapper: owns the `uv_*_t` memory and closes it the one
/// safe way (docs/architecture.md, "Handle lifetimes").
///
/// - The memory is allocated on the heap, never a stored property or the stack,
///   because libuv keeps the address until the close callback.
/// - `handle.data` points at this object, unretained: while the handle is open
///   the owner (a server's connection table, say) holds the strong reference.
/// - `close()` retains the object and calls `uv_close`; the close callback frees
///   the memory, calls `didClose()` and releases the object. `deinit` frees
///   nothing and only checks that this happened.
open class UVHandle {
    /// The loop the handle belongs to.
    public let loop: EventLoop
    package let rawHandle: UnsafeMutablePointer<uv_handle_t>
    /// `close()` was called; the close callback may not have run yet.
    public private(set) var isClosing = false

    /// `memory` must come from `allocate` and already be initialised by the
    /// matching `uv_*_init`.
    public init(loop: EventLoop, memory: UnsafeMutableRawPointer) {
        self.loop = loop
        self.rawHandle = memory.assumingMemoryBound(to: uv_handle_t.self)
        rawHandle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    /// An owner released before it ever closed its handle (a listener whose
    /// `listen` failed, say) closes it here: the handle forgets its owner, and
    /// its close callback only frees the memory. Requests still pending on it
    /// are cancelled by libuv and find no owner (`owner(of:)` is nil).
    deinit {
        if isClosing { return }
        rawHandle.pointee.data = nil
        if loop.isClosed {
            // A closed loop holds no handle (`uv_loop_close` refused while any
            // was open), so this one was never started: its memory is ours.
            UnsafeMutableRawPointer(rawHandle).deallocate()
            return
        }
        uv_close(rawHandle) { handle in UnsafeMutableRawPointer(handle!).deallocate() }
    }

    /// The owner a request's handle points back at, or nil once the owner
    /// has gone (see `deinit`).
    static func owner<T: UVHandle>(of handle: UnsafeMutablePointer<uv_stream_t>?, as type: T.Type) -> Unmanaged<T>? {
        guard let data = handle?.pointee.data else { return nil }
        return Unmanaged<T>.fromOpaque(data)
    }

    /// Starts closing. Safe to call more than once; `didClose()` runs once, from
    /// a later loop iteration.
    public func close() {
        if isClosing { return }
        isClosing = true
        _ = Unmanaged.passRetained(self)
        uv_close(rawHandle) { handle in
            let owner = Unmanaged<UVHandle>.fromOpaque(handle!.pointee.data)
            UnsafeMutableRawPointer(handle!).deallocate()
            owner.takeUnretainedValue().didClose()
            owner.release()
        }
    }

    /// Called once the handle memory is gone. Subclasses release their state here.
    open func didClose() {}

    /// A handle that is not referenced does not keep `EventLoop.run()` going.
    public func unref() { uv_unref(rawHandle) }
    /// Makes the handle keep the loop running again (after `unref`).
    public func ref() { uv_ref(rawHandle) }
}

/// Handles belong to their loop's thread.
@available(*, unavailable)
extension UVHandle: Sendable {}
