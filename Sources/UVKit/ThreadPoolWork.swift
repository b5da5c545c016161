import CLibUV

/// Blocking work (file system calls) run on libuv's thread pool, with its
/// completion back on the loop thread: `uv_queue_work`.
///
/// `work` runs on a pool thread and may touch only what it was given for
/// that purpose; the loop thread leaves that alone until `done`, which runs
/// on the loop thread after `work` returned (libuv's queue orders the two,
/// so what `work` wrote is visible to `done`). A pending work item keeps
/// the loop running, as a handle does.
public enum ThreadPoolWork {
    private final class Item {
        let work: () -> Void
        let done: () -> Void
        init(work: @escaping () -> Void, done: @escaping () -> Void) {
            self.work = work
            self.done = done
        }
    }

    /// Queues `work`; `done` follows on the loop thread. Loop thread only.
    public static func run(on loop: EventLoop, _ work: @escaping () -> Void, then done: @escaping () -> Void) {
        loop.checkThread("ThreadPoolWork.run")
        let request = UnsafeMutablePointer<uv_work_t>.allocate(capacity: 1)
        // Held by the request until its completion callback.
        request.pointee.data = Unmanaged.passRetained(Item(work: work, done: done)).toOpaque()
        let rc = uv_queue_work(loop.raw, request, { request in
            Unmanaged<Item>.fromOpaque(request!.pointee.data).takeUnretainedValue().work()
        }, { request, _ in
            // Also after uv_cancel (status UV_ECANCELED), which this type never
            // calls: `done` runs either way, and is where the item is let go of.
            let item = Unmanaged<Item>.fromOpaque(request!.pointee.data).takeRetainedValue()
            request!.deallocate()
            item.done()
        })
        if rc != 0 {
            // Only for a null callback, which cannot happen here; run both on
            // this thread rather than lose the completion.
            let item = Unmanaged<Item>.fromOpaque(request.pointee.data).takeRetainedValue()
            request.deallocate()
            item.work()
            item.done()
        }
    }
}
