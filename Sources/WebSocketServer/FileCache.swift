/// Small files kept in memory, one cache per loop (no lock): a page's assets
/// are served without a trip to the thread pool, and each is looked at on
/// disk again once `revalidateAfter` has passed, so an edited file is served
/// edited within that time.
final class FileCache {
    struct Entry {
        var identity: FoundFile
        var gzip: FoundFile?
        var contentType: String
        var checkedAt: UInt64
        var bytes: Int { (identity.body?.count ?? 0) + (gzip?.body?.count ?? 0) }
    }

    private var entries: [String: Entry] = [:]
    private var total = 0
    let capacity: Int
    let revalidateAfter: UInt64

    init(capacity: Int, revalidateAfter: UInt64) {
        self.capacity = capacity
        self.revalidateAfter = revalidateAfter
    }

    /// The entry for `key` if it was checked recently enough.
    func fresh(_ key: String, now: UInt64) -> Entry? {
        guard let entry = entries[key], now &- entry.checkedAt < revalidateAfter else { return nil }
        return entry
    }

    /// Keeps a lookup's result if every file in it is held in memory; drops
    /// what was kept under `key` otherwise (the file grew, or is gone).
    func store(_ key: String, _ lookup: FileLookup, now: UInt64) {
        if let old = entries.removeValue(forKey: key) { total -= old.bytes }
        guard let identity = lookup.identity, identity.body != nil, lookup.gzip.map({ $0.body != nil }) ?? true else { return }
        let entry = Entry(identity: identity, gzip: lookup.gzip, contentType: lookup.contentType, checkedAt: now)
        guard entry.bytes <= capacity else { return }
        // Room is made by dropping entries in no particular order: a bounded
        // cache for a page's assets, not a CDN's replacement policy.
        while total + entry.bytes > capacity, let victim = entries.first {
            total -= victim.value.bytes
            entries.removeValue(forKey: victim.key)
        }
        entries[key] = entry
        total += entry.bytes
    }
}
