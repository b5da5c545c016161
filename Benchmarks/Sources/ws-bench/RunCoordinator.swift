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
        /// Per second: the samples reported so far.
        var seconds: [Int: [Sample]] = [:]
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

    /// One loop's second; the line for the second goes out once all are in.
    func report(_ sample: Sample) {
        guard live else { return }
        let merged: Sample? = state.withLock { state in
            state.seconds[sample.second, default: []].append(sample)
            guard let samples = state.seconds[sample.second], samples.count == loops else { return nil }
            state.seconds[sample.second] = nil
            return Sample.merged(samples, p99: samples.compactMap(\.p99Microseconds).max())
        }
        if let merged {
            print(merged.liveLine)
            fflush(nil)
        }
    }
}
