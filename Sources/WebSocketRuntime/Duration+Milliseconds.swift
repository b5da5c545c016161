extension Duration {
    /// The longest duration a timeout counts, in milliseconds (2^42, about
    /// 139 years): longer ones, `.seconds(Int64.max)` as a "never" included,
    /// count as this, so that a deadline (the loop's clock plus a timeout)
    /// can never overflow.
    package static let longestMilliseconds: UInt64 = 1 << 42

    /// Whole milliseconds, the unit of libuv's clock: 0 for a negative
    /// duration, at most `longestMilliseconds`.
    package var milliseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        if seconds >= Int64(Self.longestMilliseconds / 1000) { return Self.longestMilliseconds }
        return min(UInt64(seconds) * 1000 + UInt64(attoseconds / 1_000_000_000_000_000), Self.longestMilliseconds)
    }
}
