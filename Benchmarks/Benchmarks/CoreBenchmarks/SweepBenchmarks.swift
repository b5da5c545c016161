import Benchmark
import WebSocketCore

/// The keep-alive sweep: one 1 s tick of the timing wheel in steady state (what
/// expires is rescheduled one interval on, as the server does after a ping).
/// About entries / interval are due per tick. The three cases show that a tick
/// costs in proportion to the entries due, not to the entries tracked:
/// 1M entries with 8,333 due, 1M with 833 due, and 10k with 83 due.
func registerSweepBenchmarks() {
    let granularity: UInt64 = 1000
    for (entries, interval) in [(1_000_000, UInt64(120_000)), (1_000_000, UInt64(1_200_000)), (10_000, UInt64(120_000))] {
        let due = entries / Int(interval / granularity)
        Benchmark("Sweep \(entries) entries, \(due) due per tick",
                  configuration: .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal], scalingFactor: .one, maxIterations: 500)) { (benchmark: Benchmark, state: (WheelBox, ExpiredBox)) in
            let (wheelBox, expiredBox) = state
            for _ in benchmark.scaledIterations {
                wheelBox.now &+= granularity
                expiredBox.slots.removeAll(keepingCapacity: true)
                wheelBox.wheel.sweep(now: wheelBox.now, into: &expiredBox.slots)
                for slot in expiredBox.slots { wheelBox.wheel.schedule(slot, at: wheelBox.now &+ interval) }
                blackHole(expiredBox.slots.count)
            }
        } setup: {
            // Start half an interval in, where the first deadlines fall: every
            // measured tick is then in steady state.
            let box = WheelBox(wheel: TimingWheel(granularity: granularity, bucketCount: 4096, now: interval / 2))
            box.now = interval / 2
            box.wheel.reserve(slots: entries)
            for slot in 0..<entries {
                // Spread over one interval, as connections opened over time are.
                box.wheel.schedule(Int32(slot), at: UInt64(slot) * interval / UInt64(entries) + interval / 2)
            }
            let expired = ExpiredBox()
            expired.slots.reserveCapacity(entries)
            return (box, expired)
        }
    }
}

final class WheelBox: @unchecked Sendable {
    var wheel: TimingWheel
    var now: UInt64 = 0
    init(wheel: TimingWheel) { self.wheel = wheel }
}

final class ExpiredBox: @unchecked Sendable {
    var slots: [Int32] = []
}
