#if canImport(Glibc)
import Glibc
#endif

/// A value behind a `pthread_mutex_t`, for the few places where threads meet
/// (a loop's inbox, a group's figures). Not the standard library's `Mutex`:
/// on Linux that one waits with raw futex calls, which ThreadSanitizer cannot
/// see, so every access under it reads as a race and the sanitizer is blind
/// to the real ones. `Sendable` unchecked: every access to the value is
/// inside `withLock`, under the mutex.
public final class Lock<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    /// A lock guarding `value`.
    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, the lock held; keep `body` short and never call back into the lock.
    @inline(__always)
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
