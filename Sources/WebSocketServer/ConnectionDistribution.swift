/// How a `WebSocketServerGroup`'s connections reach its loops. Not nested in
/// the generic group, so that code choosing one needs no handler type.
public enum ConnectionDistribution: Sendable {
    /// Each loop listens on the address with `SO_REUSEPORT` and the kernel
    /// spreads connections by a hash of their addresses. No hand over, so the
    /// cheapest; a busy loop still gets its share.
    case reusePort
    /// Loop 0 alone accepts and hands the sockets to the loops in turn: an
    /// even spread whatever the kernel does (or where it does not balance),
    /// for a descriptor passed per connection.
    case roundRobin
}
