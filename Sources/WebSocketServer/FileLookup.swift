#if canImport(Glibc)
import Glibc
#endif

/// A file found under the root: what a response needs of it.
struct FoundFile {
    let metadata: FileMetadata
    let etag: String
    /// "ETag: ...\r\nLast-Modified: ...\r\n", made once per lookup, not per response.
    let validators: [UInt8]
    /// The whole file, when it is at most the inline limit (then there is no
    /// descriptor); nil for a larger file, read from `descriptor`.
    var body: [UInt8]?
    /// Open for reading (-1 when `body` holds the file, or when the file was
    /// only looked at). Whoever holds the `FoundFile` closes it.
    var descriptor: Int32 = -1

    init(metadata: FileMetadata, body: [UInt8]? = nil, descriptor: Int32 = -1) {
        self.metadata = metadata
        self.body = body
        self.descriptor = descriptor
        etag = metadata.etag
        validators = Array("ETag: \(etag)\r\nLast-Modified: \(metadata.lastModified)\r\n".utf8)
    }
}

/// One request's file, found, checked and opened in one trip to libuv's
/// thread pool (`ThreadPoolWork`): `realpath`, `open`, `fstat` and, for a
/// small file, `read` each may block on a slow disk, and none of them runs
/// on the loop thread. One trip, not one per call, since each trip costs a
/// wake-up of the loop.
///
/// Threading: the inputs are set on the loop thread before the work is
/// queued and only read after; `run()` (pool thread) writes the outputs,
/// which the loop thread reads only in the work's completion.
final class FileLookup {
    let root: String
    /// Under the root, without a leading slash ("" for the root).
    let relative: String
    let lookForGzip: Bool
    /// The `.gz` sibling is the one to open (the client accepts gzip).
    let prefersGzip: Bool
    let inlineLimit: Int
    /// The request named a folder (its path ends with "/", or is the root).
    let asFolder: Bool

    /// 404 or 403 when no file is found; 301 for a folder named without its
    /// trailing slash.
    private(set) var status = 404
    /// The file asked for (`index.html` for a folder).
    private(set) var identity: FoundFile?
    /// Its precompressed sibling, if it has one.
    private(set) var gzip: FoundFile?
    /// The name asked for (`index.html` for a folder), and its content type.
    private(set) var name = ""
    var contentType: String { StaticFiles.contentType(for: name) }

    init(root: String, relative: String, asFolder: Bool, lookForGzip: Bool, prefersGzip: Bool, inlineLimit: Int) {
        self.root = root
        self.asFolder = asFolder || relative.isEmpty
        self.relative = relative
        self.lookForGzip = lookForGzip
        self.prefersGzip = prefersGzip
        self.inlineLimit = inlineLimit
    }

    /// On a pool thread.
    func run() {
        var candidate = relative.isEmpty ? root : (root == "/" ? "/" : root + "/") + relative
        name = candidate
        switch probe(candidate, keepOpen: !(lookForGzip && prefersGzip)) {
        case .found(let file):
            identity = file
        case .directory where !asFolder:
            // A folder named without its trailing slash: the client is sent
            // to the name with one, so that the page's relative links resolve
            // inside the folder (as web servers do).
            status = 301
        case .directory:
            candidate += "/index.html"
            name = candidate
            if case .found(let file) = probe(candidate, keepOpen: !(lookForGzip && prefersGzip)) { identity = file }
        case .missing(let status):
            self.status = status
        }
        guard let found = identity else { return }
        if lookForGzip, case .found(let file) = probe(candidate + ".gz", keepOpen: prefersGzip) {
            gzip = file
        }
        // The identity file was looked at without being opened, for a client
        // that takes gzip; with no sibling to serve after all, open it now.
        if gzip == nil && found.body == nil && found.descriptor < 0 {
            if case .found(let file) = probe(candidate, keepOpen: true) { identity = file } else { identity = nil }
        }
    }

    private enum Probe {
        case found(FoundFile)
        case directory
        case missing(Int)
    }

    /// Finds `path`, refusing one that resolves outside the root (a symlink
    /// out of it) or is neither a file nor a folder; reads it whole if it is
    /// small, or keeps it open if `keepOpen`.
    private func probe(_ path: String, keepOpen: Bool) -> Probe {
        guard let resolved = StaticFiles.realPath(path) else { return .missing(errno == EACCES ? 403 : 404) }
        guard resolved == root || resolved.hasPrefix(root == "/" ? "/" : root + "/") else { return .missing(404) }
        let fd = open(resolved, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .missing(errno == EACCES ? 403 : 404) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            return .missing(404)
        }
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            close(fd)
            return .directory
        case S_IFREG:
            break
        default:
            close(fd)
            return .missing(404)
        }
        let metadata = FileMetadata(size: Int(info.st_size), modifiedSeconds: Int(info.st_mtim.tv_sec),
                                    modifiedNanoseconds: Int(info.st_mtim.tv_nsec), inode: UInt64(info.st_ino))
        if metadata.size <= inlineLimit {
            defer { close(fd) }
            guard let body = readWhole(fd, size: metadata.size) else { return .missing(404) }
            return .found(FoundFile(metadata: metadata, body: body))
        }
        if keepOpen { return .found(FoundFile(metadata: metadata, descriptor: fd)) }
        close(fd)
        return .found(FoundFile(metadata: metadata))
    }

    private func readWhole(_ fd: Int32, size: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            // A file that shrank since its fstat is not served half.
            if n <= 0 { return nil }
            done += n
        }
        return bytes
    }

    /// Closes what was opened and not used (the completion found the
    /// connection gone). Loop thread, after `run()`.
    func closeDescriptors() {
        for file in [identity, gzip] { if let fd = file?.descriptor, fd >= 0 { close(fd) } }
        identity?.descriptor = -1
        gzip?.descriptor = -1
    }
}
