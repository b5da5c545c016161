import ArgumentParser
import Foundation

/// `ws-bench compare A.json B.json`: two runs' figures side by side, each
/// with the statistic it is, B against A as a ratio and a change.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compares two --json reports: each figure of A and B, with the statistic named, and B ÷ A.")

    @Argument(help: "The baseline report (--json of an earlier run).") var a: String
    @Argument(help: "The report to compare with it.") var b: String

    func run() throws {
        let reports = try [a, b].map { path -> [String: Any] in
            guard let data = FileManager.default.contents(atPath: path),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ValidationError("\(path) is not a ws-bench --json report")
            }
            return object
        }
        print(Self.table(reports[0], reports[1], names: (a, b)))
    }

    /// The figures compared, each with its statistic; latencies in µs.
    static let figures: [(key: String, latency: Bool, statistic: String)] = [
        ("messagesPerSecond", false, "messages per second, mean over the measured window"),
        ("messagesPerServerCPUSecond", false, "messages per server-CPU-second (--server-pid), over the window"),
        ("clientCPUSeconds", false, "client CPU seconds in the window (every thread)"),
        ("p50", true, "latency µs, median of the window's HdrHistogram"),
        ("p90", true, "latency µs, 90th percentile"),
        ("p99", true, "latency µs, 99th percentile"),
        ("p99.9", true, "latency µs, 99.9th percentile"),
        ("p99.99", true, "latency µs, 99.99th percentile"),
        ("max", true, "latency µs, largest recorded"),
        ("failed", false, "connections failed (any error class)"),
    ]

    static func table(_ a: [String: Any], _ b: [String: Any], names: (String, String)) -> String {
        func value(_ report: [String: Any], _ figure: (key: String, latency: Bool, statistic: String)) -> Double? {
            let source = figure.latency ? report["latencyMicroseconds"] as? [String: Any] : report
            return (source?[figure.key] as? NSNumber)?.doubleValue
        }
        var lines = ["A: \(names.0)", "B: \(names.1)", ""]
        for figure in figures {
            guard let x = value(a, figure), let y = value(b, figure) else { continue }
            let ratio = x != 0 ? String(format: "%.3f", y / x) : "-"
            let change = x != 0 ? String(format: "%+.1f%%", (y / x - 1) * 100) : "-"
            let label = figure.statistic.padding(toLength: 64, withPad: " ", startingAt: 0)
            lines.append(label + String(format: "A %14.1f   B %14.1f", x, y) + "   B÷A \(ratio) (\(change))")
        }
        return lines.joined(separator: "\n")
    }
}
