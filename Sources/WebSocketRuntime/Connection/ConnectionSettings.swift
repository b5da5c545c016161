import WebSocketCompression
import WebSocketCore

/// The settings every connection of one server or one client applies, taken
/// from its options once so the per-message path reads plain integers. Each
/// role has its own public options type (`WebSocketOptions` for a server,
/// `WebSocketClientOptions` for a client); this is what the two share.
package struct ConnectionSettings: Sendable {
    package var role: Role
    package var maxMessageSize: Int
    package var maxBackpressure: Int
    package var keepAlive: KeepAlivePolicy
    package var handshakeTimeout: UInt64
    package var closeTimeout: UInt64
    package var headLimits: HTTPHeadLimits

    /// The largest receive buffer: one ring per loop, allocated whole.
    package static let maxReceiveBufferSize = 1 << 30

    package init(role: Role, maxMessageSize: Int, maxBackpressure: Int, keepAliveInterval: Duration,
                 keepAliveTimeout: Duration, handshakeTimeout: Duration, closeTimeout: Duration,
                 headLimits: HTTPHeadLimits) {
        self.role = role
        self.maxMessageSize = maxMessageSize
        self.maxBackpressure = maxBackpressure
        keepAlive = KeepAlivePolicy(interval: keepAliveInterval.milliseconds, timeout: keepAliveTimeout.milliseconds)
        self.handshakeTimeout = handshakeTimeout.milliseconds
        self.closeTimeout = closeTimeout.milliseconds
        self.headLimits = headLimits
    }

    /// Why options both roles have cannot run, or nil: the message names the
    /// field, and each role wraps it in its own typed error.
    package static func problem(receiveBufferSize size: Int, maxMessageSize: Int, maxBackpressure: Int,
                                compression: CompressionOptions?, durations: KeyValuePairs<String, Duration>,
                                headLimits: HTTPHeadLimits) -> String? {
        guard size >= ByteRing.minimumCapacity, size <= maxReceiveBufferSize, size & (size - 1) == 0 else {
            return "receiveBufferSize must be a power of two from \(ByteRing.minimumCapacity) to \(maxReceiveBufferSize), got \(size)"
        }
        guard maxMessageSize > 0 else { return "maxMessageSize must be positive" }
        guard maxBackpressure > 0 else { return "maxBackpressure must be positive" }
        if let problem = compression?.validationError() { return problem }
        for (name, value) in durations where value < .zero {
            return "\(name) must not be negative"
        }
        return headLimits.validationError()
    }

    /// A wheel tick fine enough that no deadline fires more than an eighth late.
    package var wheelGranularity: UInt64 {
        let periods = [keepAlive.interval, keepAlive.timeout, handshakeTimeout, closeTimeout].filter { $0 > 0 }
        return min(max((periods.min() ?? 1000) / 8, 10), 1000)
    }
}
