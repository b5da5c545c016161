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
    public let loop: EventLoop
    package let rawHandle: UnsafeMutablePointer<uv_handle_t>
    public private(set) var isClosing = false

    /// `memory` must come from `allocate` and already be initialised by the
    /// matching `uv_*_init`.
    public init(loop: EventLoop, memory: UnsafeMutableRawPointer) {
        self.loop = loop
        self.rawHandle = memory.assumingMemoryBound(to: uv_handle_t.self)
        rawHandle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        precondition(isClosing, "a libuv handle was released without close()")
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
    public func ref() { uv_ref(rawHandle) }
}

/// Handles belong to their loop's thread.
@available(*, unavailable)
extension UVHandle: Sendable {}
