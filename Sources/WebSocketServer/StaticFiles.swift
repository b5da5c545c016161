#if canImport(Glibc)
import Glibc
#endif

/// The folder a server serves files from, and how a request target maps to
/// a path under it. No system call here: finding and opening the file is
/// `FileLookup`'s, on the thread pool.
struct StaticFiles {
    /// The root, resolved (symlinks followed), without a trailing slash
    /// (except for "/" itself).
    let root: String
    let options: StaticFileOptions

    /// Resolves `root` (at set-up, on the caller's thread); nil if it is not a folder.
    init?(root: String, options: StaticFileOptions) {
        guard let resolved = StaticFiles.realPath(root), StaticFiles.isDirectory(resolved) else { return nil }
        self.root = resolved
        self.options = options
    }

    enum Mapping: Equatable {
        /// A path under the root, without a leading slash ("" for the root).
        case path(String)
        case error(Int)
    }

    /// Maps a request target to a path under the root. Refuses every way out
    /// of it: `..` and `.` segments (also percent-encoded, as `%2e%2e`),
    /// encoded slashes and backslashes, NUL; and names beginning with a dot
    /// unless `serveDotFiles`. Symlinks that lead outside are refused when
    /// the file is looked up.
    func map(target: String) -> Mapping {
        var path = Substring(target)
        if let query = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<query] }
        guard path.hasPrefix("/") else { return .error(400) }
        if let plain = plainPath(path) { return plain }
        guard let decoded = StaticFiles.percentDecode(path) else { return .error(400) }
        var segments: [Substring] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." || segment == ".." || segment.contains("\\") || segment.contains("\0") {
                return .error(400)
            }
            if segment.hasPrefix(".") && !options.serveDotFiles { return .error(404) }
            segments.append(segment)
        }
        return .path(segments.joined(separator: "/"))
    }

    /// The usual target ("/app.js", "/img/logo.png") in one pass over its
    /// bytes, with no copy but the result: nil when it needs `map`'s general
    /// path (an escape, a backslash, NUL, an empty or dot segment, a
    /// trailing slash).
    private func plainPath(_ path: Substring) -> Mapping? {
        var previous = UInt8(ascii: "/")
        var count = 0
        for c in path.utf8 {
            switch c {
            case UInt8(ascii: "%"), UInt8(ascii: "\\"), 0:
                return nil
            case UInt8(ascii: "/"):
                if previous == UInt8(ascii: "/") && count > 0 { return nil }
            case UInt8(ascii: "."):
                if previous == UInt8(ascii: "/") { return nil }
            default:
                break
            }
            previous = c
            count += 1
        }
        if count > 1 && previous == UInt8(ascii: "/") { return nil }
        return .path(String(path.dropFirst()))
    }

    static func contentType(for path: String) -> String {
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json", "map": return "application/json"
        case "txt": return "text/plain; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "ico": return "image/x-icon"
        case "wasm": return "application/wasm"
        case "woff2": return "font/woff2"
        default: return "application/octet-stream"
        }
    }

    /// %XX decoding; nil for a malformed escape or bytes that are not UTF-8.
    /// An encoded "/" (%2F) is refused rather than decoded, so that it cannot
    /// join segments the split above would have kept apart.
    static func percentDecode(_ s: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let c = it.next() {
            if c == UInt8(ascii: "%") {
                guard let h = it.next().flatMap(hexValue), let l = it.next().flatMap(hexValue) else { return nil }
                let byte = h << 4 | l
                if byte == UInt8(ascii: "/") || byte == 0 { return nil }
                bytes.append(byte)
            } else {
                bytes.append(c)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// A mapped path as a URL path again: "/" and RFC 3986's unreserved
    /// characters as they are, every other byte as %XX.
    static func percentEncode(_ path: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for c in path.utf8 {
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"), UInt8(ascii: "/"):
                bytes.append(c)
            default:
                bytes += [UInt8(ascii: "%"), hex[Int(c >> 4)], hex[Int(c & 15)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}
