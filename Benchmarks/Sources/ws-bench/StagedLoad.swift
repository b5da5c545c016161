/// A staged run (`--stage`): the window is the whole plan; every 10 ms the
/// loop opens or closes connections toward the plan's count and, at a stage's
/// boundary, sets the next stage's rate and starts its figures. Connections
/// send from the moment they open; those the plan no longer wants close with
/// 1000 (not an error), newest first.
extension Bench {
    func startStages() {
        loadStarted = true
        openWindow()
        beginStage(0, at: windowStart)
        if config.rate != nil {
            _ = timer(every: 1) { [unowned self] in sendAtRate() }
        }
        _ = timer(every: 10) { [unowned self] in stageTick() }
        stageTick()
    }

    private func stageTick() {
        if stopping { return }
        let now = Bench.nanoseconds()
        let elapsed = Double(now - windowStart) / 1e9
        guard let (index, _) = plan.stage(at: elapsed) else { return finish() }
        while stageIndex < index {
            endStage()
            beginStage(stageIndex + 1, at: now)
        }
        let wanted = plan.connections(at: elapsed)
        var open = connecting + ready
        // At most 256 handshakes at a time: a burst of thousands of SYNs
        // overflows the server's backlog.
        while open < wanted && connecting < 256 {
            connectNext()
            open += 1
        }
        if ready > 0 && open > wanted { retire(open - wanted) }
    }

    private func beginStage(_ index: Int, at now: UInt64) {
        stageIndex = index
        stageStartedAt = now
        stageFailedAtStart = failed
        stageReceivedAtStart = received
        stageHistogram.reset()
        let stage = config.stages[index]
        // The open loop's schedule starts again at the stage's rate.
        currentRate = stage.rate
        rateStart = now
        scheduled = 0
        log("stage \(index + 1): \(stage.connections) connections\(stage.rate.map { ", \($0) msg/s" } ?? ""), \(stage.seconds) s")
    }

    /// The current stage's figures are final (its end, or the run's).
    func endStage() {
        finishedStages.append((Double(Bench.nanoseconds() - stageStartedAt) / 1e9, received - stageReceivedAtStart,
                               stageHistogram, failed - stageFailedAtStart))
    }

    /// Closes `count` open connections, the newest first, with 1000.
    private func retire(_ count: Int) {
        var left = count
        for c in connections.reversed() where c.state == .running {
            if left == 0 { break }
            c.retire()
            ready -= 1
            left -= 1
        }
    }

    /// Every loop's stage figures, merged stage by stage.
    static func stageFigures(_ benches: [Bench]) -> [StageFigures]? {
        guard benches[0].staged else { return nil }
        let count = benches.map(\.finishedStages.count).max() ?? 0
        return (0..<count).map { index in
            let parts = benches.compactMap { index < $0.finishedStages.count ? $0.finishedStages[index] : nil }
            var histogram = parts[0].histogram
            for part in parts.dropFirst() { histogram.add(part.histogram) }
            return StageFigures.merged(index: index, stage: benches[0].config.stages[index], threads: benches.count,
                                       seconds: parts.map(\.seconds).max() ?? 0,
                                       messages: parts.map(\.messages).reduce(0, +), histogram: histogram,
                                       errors: parts.map(\.errors).reduce(0, +))
        }
    }
}
