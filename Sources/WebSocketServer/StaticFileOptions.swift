import WebSocketCore
import WebSocketRuntime

/// How `serveFiles(from:options:)` answers: caching, keep-alive and safety.
/// The defaults suit a page served beside WebSockets; every limit is checked
/// when the files are set up (`WebSocketServerError.invalidOption`).
public struct StaticFileOptions: Sendable {
    /// The `Cache-Control` header of every file response; nil sends none.
    /// "no-cache" (the default) lets browsers keep a copy and revalidate it
    /// with its `ETag` each time (a 304 costs no body).
    public var cacheControl: String? = "no-cache"
    /// Serves names beginning with "." (".env", ".git/") when true; by
    /// default such a path gets 404, as if it were not there.
    public var serveDotFiles = false
    /// Serves `name.gz` in place of `name`, with `Content-Encoding: gzip`, to
    /// clients that accept gzip, when that sibling exists in the same folder.
    public var precompressed = true
    /// How long a kept-alive connection waits for its next request.
    public var keepAliveTimeout: Duration = .seconds(5)
    /// Requests one connection may make; the last response says
    /// `Connection: close`.
    public var maxRequestsPerConnection = 1000
    /// How long a response may go without the peer taking a byte before the
    /// connection is dropped (a reader that stalls holds a file open).
    public var sendTimeout: Duration = .seconds(60)
    /// Files up to this size are kept in memory after their first request,
    /// and served from there without a disk access.
    public var memoryCacheFileLimit = 64 * 1024
    /// The memory the loop's file cache may hold, in bytes (0: no cache).
    public var memoryCacheSize = 8 * 1024 * 1024
    /// A cached file is looked at again on disk (a changed file is served
    /// changed) when this much time has passed since it was read.
    public var revalidateAfter: Duration = .seconds(1)

    /// The defaults listed with each option.
    public init() {}

    func validate() throws {
        if let cacheControl, !HTTPFieldRules.isValidFieldLine("Cache-Control: " + cacheControl) {
            throw WebSocketServerError.invalidOption("cacheControl must be a valid header value")
        }
        guard keepAliveTimeout > .zero else { throw WebSocketServerError.invalidOption("keepAliveTimeout must be positive") }
        guard sendTimeout >= .zero else { throw WebSocketServerError.invalidOption("sendTimeout must not be negative") }
        guard maxRequestsPerConnection >= 1 else { throw WebSocketServerError.invalidOption("maxRequestsPerConnection must be at least 1") }
        guard memoryCacheFileLimit >= 0, memoryCacheSize >= 0 else {
            throw WebSocketServerError.invalidOption("memoryCacheFileLimit and memoryCacheSize must not be negative")
        }
        guard revalidateAfter >= .zero else { throw WebSocketServerError.invalidOption("revalidateAfter must not be negative") }
    }
}
