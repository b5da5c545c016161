/// Incremental UTF-8 validation (RFC 3629 §4, as RFC 6455 §8.1 requires for text
/// messages). The state carries across frames and chunks, so a code point split
/// by a frame boundary or a ring wrap is checked as a whole, and the first byte
/// that can never lead to valid UTF-8 fails at once (fail fast, Autobahn 6.4.x).
public struct UTF8Validator: Sendable {
    /// Continuation bytes still expected for the current code point.
    @usableFromInline var pending: UInt8 = 0
    /// The allowed range of the next continuation byte. Only the first
    /// continuation byte after E0, ED, F0 and F4 is narrower than 80...BF; that is
    /// what rules out overlong forms, surrogates and code points past U+10FFFF.
    @usableFromInline var low: UInt8 = 0x80
    @usableFromInline var high: UInt8 = 0xBF

    /// A validator at the start of a text.
    @inlinable public init() {}

    /// True when the bytes seen so far end on a code point boundary.
    @inlinable public var isComplete: Bool { pending == 0 }

    /// Back to the start of a text.
    @inlinable public mutating func reset() { self = UTF8Validator() }

    /// Feeds the next bytes. Returns false at the first invalid byte; the state is
    /// then meaningless and the message must be failed with 1007.
    @inlinable
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        return validate(base, count: bytes.count)
    }

    /// Validates `count` more bytes; false at the first byte that cannot continue valid UTF-8 (RFC
    /// 3629); a sequence cut at the end continues in the next call.
    @inlinable
    public mutating func validate(_ base: UnsafeRawPointer, count: Int) -> Bool {
        var i = 0
        while i < count {
            if pending == 0 {
                // ASCII fast path: eight bytes at a time while no high bit is set.
                while i &+ 8 <= count,
                      (base + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                    i &+= 8
                }
                if i >= count { break }
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                i &+= 1
                if b < 0x80 { continue }
                if !start(b) { return false }
            } else {
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                i &+= 1
                if b < low || b > high { return false }
                pending &-= 1
                low = 0x80
                high = 0xBF
            }
        }
        return true
    }

    @inlinable
    mutating func start(_ b: UInt8) -> Bool {
        switch b {
        case 0xC2...0xDF: pending = 1
        case 0xE0: pending = 2; low = 0xA0
        case 0xE1...0xEC, 0xEE, 0xEF: pending = 2
        case 0xED: pending = 2; high = 0x9F
        case 0xF0: pending = 3; low = 0x90
        case 0xF1...0xF3: pending = 3
        case 0xF4: pending = 3; high = 0x8F
        default: return false  // 80...C1 and F5...FF never start a code point
        }
        return true
    }
}
