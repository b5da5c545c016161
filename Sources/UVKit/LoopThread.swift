import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// A thread of its own for a loop, joined by its owner. POSIX threads rather
/// than Foundation's, so this layer needs nothing above libc.
/// `Sendable` unchecked: the thread handle is written once in `init`; `join`
/// is for the one owner that waits for it.
public final class LoopThread: @unchecked Sendable {
    private var thread = pthread_t()
    private var joined = false

    /// Starts `body` on a new thread named `name` (at most 15 bytes show).
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws {
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { argument in
            let body = Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue()
            body.run()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Body>.fromOpaque(box).release()
            throw UVError(-rc)
        }
        _ = pthread_setname_np(thread, String(name.utf8.prefix(15))!)
    }

    deinit {
        if !joined { pthread_detach(thread) }
    }

    /// Waits for the thread to end, from another thread; later calls return at once.
    public func join() {
        if joined { return }
        joined = true
        pthread_join(thread, nil)
    }

    /// Runs blocking `body` (a loop's `run()`) on a thread of its own and
    /// waits for it suspended, so that no loop occupies one of the Swift
    /// concurrency pool's few threads. Nobody joins the thread: its end is
    /// the wait's.
    public static func run(name: String, _ body: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            do {
                _ = try LoopThread(name: name) { continuation.resume(with: Result { try body() }) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// The calling thread's identity, comparable with `identity`.
    @inlinable public static var currentIdentity: UInt { UInt(uvws_current_thread()) }
    /// This thread's identity.
    public var identity: UInt { UInt(thread) }

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
}
