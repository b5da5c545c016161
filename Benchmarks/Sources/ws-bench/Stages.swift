import Histogram

/// One step of a staged run, `--stage 30s:1000conn:5000rps`: for its
/// duration the open connections move from the previous stage's count (0
/// before the first) to this one's, and the load is `rate` messages a second
/// (open loop) or, with no rate, `--in-flight` per connection (closed loop).
struct Stage: Codable, Equatable {
    var seconds: Double
    var connections: Int
    var rate: Double?

    /// `DURATION:CONNECTIONS[:RATE]`; the duration in s, m or ms (`30s`, `2m`,
    /// `500ms`), the connections with an optional `conn`, the rate with an
    /// optional `rps`.
    init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3 else { throw StageError(text, "is not DURATION:CONNECTIONS[:RATE]") }
        seconds = try Self.duration(parts[0], in: text)
        guard let connections = Int(Self.strip(parts[1], "conn")), connections >= 0, connections <= 1_000_000 else {
            throw StageError(text, "has no 0...1,000,000 connections (\(parts[1].debugDescription))")
        }
        self.connections = connections
        if parts.count == 3 {
            guard let rate = Double(Self.strip(parts[2], "rps")), rate > 0, rate <= 1e9 else {
                throw StageError(text, "has no rate in (0, 1e9] (\(parts[2].debugDescription))")
            }
            self.rate = rate
        }
    }

    init(seconds: Double, connections: Int, rate: Double?) {
        self.seconds = seconds
        self.connections = connections
        self.rate = rate
    }

    private static func strip(_ text: String, _ suffix: String) -> String {
        text.hasSuffix(suffix) ? String(text.dropLast(suffix.count)) : text
    }

    private static func duration(_ text: String, in stage: String) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
        for (unit, scale) in units where text.hasSuffix(unit) {
            if let value = Double(text.dropLast(unit.count)), value > 0, value * scale <= 3600 {
                return value * scale
            }
            break
        }
        throw StageError(stage, "has no duration in (0, 1h] with a unit of ms, s or m (\(text.debugDescription))")
    }

    /// One loop's part of the stage (of `threads`), the connections and the
    /// rate divided evenly.
    func share(of threads: Int) -> Stage {
        Stage(seconds: seconds, connections: connections / threads, rate: rate.map { $0 / Double(threads) })
    }
}

struct StageError: Error, CustomStringConvertible {
    let description: String
    init(_ stage: String, _ problem: String) { description = "--stage \(stage.debugDescription) \(problem)" }
}

/// Where a staged run is at a moment: the stage, and how many connections
/// should be open by then. Without `--connect-rate` the count moves evenly
/// over the stage (a ramp, as k6's stages); with it, at that many a second
/// from the stage's start until it reaches the stage's count (a step).
struct StagePlan {
    let stages: [Stage]
    /// Connections opened (or closed) a second on this loop; nil for the even ramp.
    let connectRate: Double?

    /// The stage `elapsed` seconds into the run falls in (nil once it is over).
    func stage(at elapsed: Double) -> (index: Int, start: Double)? {
        var start = 0.0
        for (index, stage) in stages.enumerated() {
            if elapsed < start + stage.seconds { return (index, start) }
            start += stage.seconds
        }
        return nil
    }

    /// The connections that should be open `elapsed` seconds into the run.
    func connections(at elapsed: Double) -> Int {
        guard let (index, start) = stage(at: elapsed) else { return stages.last?.connections ?? 0 }
        let from = index == 0 ? 0 : stages[index - 1].connections
        let to = stages[index].connections
        let into = elapsed - start
        let moved: Double
        if let connectRate {
            moved = connectRate * into
        } else {
            moved = Double(abs(to - from)) * into / stages[index].seconds
        }
        let step = min(abs(to - from), Int(moved))
        return to >= from ? from + step : from - step
    }
}

/// One stage's figures in the report: what it asked for and what it got.
struct StageFigures: Codable {
    var stage: Int
    var seconds: Double
    var connections: Int
    var rate: Double?
    var messages: Int
    var messagesPerSecond: Double
    var latencyMicroseconds: [String: Double]
    /// Failed connections during the stage.
    var errors: Int

    /// The stage's figures over every loop: counts added, histograms merged;
    /// `seconds` as measured (an interrupted stage is shorter than planned).
    static func merged(index: Int, stage: Stage, threads: Int, seconds: Double, messages: Int,
                       histogram: Histogram<UInt64>, errors: Int) -> StageFigures {
        func us(_ p: Double) -> Double { histogram.totalCount > 0 ? Double(histogram.valueAtPercentile(p)) / 1000 : 0 }
        return StageFigures(stage: index + 1, seconds: seconds, connections: stage.connections * threads,
                            rate: stage.rate.map { $0 * Double(threads) }, messages: messages,
                            messagesPerSecond: seconds > 0 ? Double(messages) / seconds : 0,
                            latencyMicroseconds: ["p50": us(50), "p99": us(99), "max": Double(histogram.max) / 1000],
                            errors: errors)
    }
}
