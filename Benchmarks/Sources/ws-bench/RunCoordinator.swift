import Histogram
import UVKit
#if canImport(Glibc)
import Glibc
#endif

/// What the loops of one run (`--threads N`, a Bench per thread) share: the
/// start of the load, once every loop has its connections open, so that the
/// measurement windows line up; and the live line, printed once every loop
/// has reported its second. `Sendable` unchecked: its state is under the lock;
/// the benches are touched only on their own loops (through `execute`).
final class RunCoordinator: @unchecked Sendable {
    private struct State {
        var benches: [LoopBound<Bench>] = []
        var arrived = 0
        /// Per second: the samples reported so far, and their latencies added.
        var seconds: [Int: (samples: [Sample], latencies: Histogram<UInt64>)] = [:]
        /// Per second, once every loop reported it: the merged p99 (µs).
        var p99: [Int: Double] = [:]
    }

    let loops: Int
    let live: Bool
    private let state = Lock(State())

    init(loops: Int, live: Bool) {
        self.loops = loops
        self.live = live
    }

    func register(_ bench: Bench) {
        state.withLock { $0.benches.append(LoopBound(bench)) }
    }

    /// Whether `bench` is loop 0's (the one that watches Ctrl-C).
    func isFirst(_ bench: Bench) -> Bool {
        state.withLock { $0.benches.first?.value === bench }
    }

    /// Ctrl-C: every loop ends its window now; the report so far follows.
    func interrupt() {
        for bench in state.withLock({ $0.benches }) {
            bench.value.loop.execute { bench.value.interrupt() }
        }
    }

    /// A loop has every connection open (or failed); the last one to arrive
    /// starts the load on every loop.
    func arrived() {
        let all: [LoopBound<Bench>]? = state.withLock { state in
            state.arrived += 1
            return state.arrived == loops ? state.benches : nil
        }
        guard let all else { return }
        for bench in all {
            bench.value.loop.execute { bench.value.startLoad() }
        }
    }

    /// One loop's second, with its latencies. Once every loop has reported
    /// the second, its histograms are added, its p99 kept for the series,
    /// and on a terminal its line goes out. A single loop merges nothing.
    func report(_ sample: Sample, latencies: Histogram<UInt64>) {
        if loops == 1 {
            if live { show(sample) }
            return
        }
        let merged: Sample? = state.withLock { state in
            if var entry = state.seconds[sample.second] {
                entry.samples.append(sample)
                entry.latencies.add(latencies)
                state.seconds[sample.second] = entry
            } else {
                state.seconds[sample.second] = ([sample], latencies)
            }
            guard let entry = state.seconds[sample.second], entry.samples.count == loops else { return nil }
            state.seconds[sample.second] = nil
            let p99 = entry.latencies.totalCount > 0 ? Double(entry.latencies.valueAtPercentile(99)) / 1000 : nil
            if let p99 { state.p99[sample.second] = p99 }
            return Sample.merged(entry.samples, p99: p99)
        }
        if live, let merged { show(merged) }
    }

    /// The merged p99 of a second every loop reported (nil otherwise).
    func mergedP99(second: Int) -> Double? {
        state.withLock { $0.p99[second] }
    }

    private func show(_ sample: Sample) {
        print(sample.liveLine)
        fflush(nil)
    }
}
