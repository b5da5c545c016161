/// Round-trip times measured since the metrics reporter last took them, for
/// a timer backend (swift-metrics) that wants each sample. Bounded: past
/// `capacity` samples in one report interval, later ones are counted in
/// `WebSocketMetrics` (`pongsReceived`, `roundTripMillisecondsTotal`) but not
/// kept, so a flood of pongs cannot grow memory. Loop thread only.
package struct RoundTripSamples {
    /// At most this many samples wait for the reporter.
    package static let capacity = 1024
    /// Milliseconds, oldest first; storage kept between reports.
    package private(set) var milliseconds: [UInt64] = []
    /// Whether a reporter takes them: until one does, nothing is kept.
    package var isCollecting = false

    package init() {}

    mutating func record(_ value: UInt64) {
        guard isCollecting, milliseconds.count < Self.capacity else { return }
        milliseconds.append(value)
    }

    /// Hands the samples to `body` and empties the list (keeping its storage).
    package mutating func drain(_ body: (UInt64) -> Void) {
        for value in milliseconds { body(value) }
        milliseconds.removeAll(keepingCapacity: true)
    }
}
