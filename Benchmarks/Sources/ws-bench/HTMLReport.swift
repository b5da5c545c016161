import Foundation

/// `--report DIR`: one self-contained HTML page (index.html) with the run's
/// plots as inline SVG, no script and nothing fetched at view time, so it
/// opens from a file, an attachment or an archive: the rate and the p99 over
/// time, the latency distribution, the percentile table and the errors.
enum HTMLReport {
    static func write(_ report: Report, to folder: String, command: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try page(report, command: command).write(toFile: folder + "/index.html", atomically: true, encoding: .utf8)
    }

    static func page(_ report: Report, command: String) -> String {
        let rate = report.series.map { (Double($0.second), Double($0.messages)) }
        let open = report.series.map { (Double($0.second), Double($0.open)) }
        let p99 = report.series.compactMap { s in s.p99Microseconds.map { (Double(s.second), $0 / 1000) } }
        // The distribution on a "nines" axis: x = -log10(1 - p), so p50 is
        // 0.3, p99 is 2 and p99.99 is 4; the maximum is drawn at 6.
        let distribution = report.latencyPercentilesMicroseconds.map { pair -> (Double, Double) in
            let p = min(pair[0], 99.9999) / 100
            return (-log10(1 - p), pair[1] / 1000)
        }
        var rows = report.latencyPercentilesMicroseconds.map { pair in
            "<tr><td>p\(String(format: "%g", pair[0]))</td><td>\(number(pair[1] / 1000, digits: 3)) ms</td></tr>"
        }
        rows.append("<tr><td>max</td><td>\(number((report.latencyMicroseconds["max"] ?? 0) / 1000, digits: 3)) ms</td></tr>")
        let stages = (report.stages ?? []).map { s in
            "<tr><td>\(s.stage)</td><td>\(s.connections)</td><td>\(s.rate.map { number($0) } ?? "closed loop")</td>"
                + "<td>\(number(s.messagesPerSecond))</td><td>\(number((s.latencyMicroseconds["p99"] ?? 0) / 1000, digits: 3)) ms</td>"
                + "<td>\(s.errors)</td></tr>"
        }
        let stageTable = stages.isEmpty ? "" : "<h2>Stages</h2>\n<table id=\"stages\"><tr><td>stage</td><td>connections</td>"
            + "<td>offered msg/s</td><td>msg/s</td><td>p99</td><td>failed</td></tr>\(stages.joined())</table>"
        let errors = report.errors.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "<li>\(escape($0.key.rawValue)): \($0.value)</li>" }
        // Open loop: a --rate, or a staged plan whose stages give rates.
        let openLoop = report.rate != nil || report.stages?.first?.rate != nil
        let summary = [
            "Connections: \(report.connected) of \(report.connections) open on \(report.threads) thread(s)",
            "Messages: \(number(Double(report.messages))) in \(number(report.seconds, digits: 2)) s, "
                + "\(number(report.messagesPerSecond)) per second" + (report.rate.map { " (offered: \(number($0)) per second, open loop)" }
                    ?? (report.stages == nil ? "" : " over the whole plan (each stage's below)")),
            "Payload: \(report.size) B, \(openLoop ? "latency from each message's intended send time" : "\(report.inFlight) in flight per connection")",
        ]
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>ws-bench report</title>
        <style>
        body { font: 14px system-ui, sans-serif; margin: 24px; color: #1d2330; }
        h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
        svg { background: #fafbfc; border: 1px solid #dde1e6; }
        .line { fill: none; stroke: #2f6fde; stroke-width: 2; }
        .axis { stroke: #8a93a3; stroke-width: 1; } text { font-size: 11px; fill: #4a5263; }
        table { border-collapse: collapse; } td { padding: 2px 12px; border-bottom: 1px solid #e4e7eb; }
        code { background: #f2f4f7; padding: 1px 4px; }
        </style></head><body>
        <h1>ws-bench report</h1>
        <p><code>\(escape(command))</code></p>
        <ul>\(summary.map { "<li>\(escape($0))</li>" }.joined())</ul>
        <h2>Messages per second</h2>
        \(chart(id: "rate", points: rate, xLabel: "second", yLabel: "messages per second"))
        <h2>p99 latency per second</h2>
        \(chart(id: "p99", points: p99, xLabel: "second", yLabel: "ms"))
        <h2>Open connections</h2>
        \(chart(id: "open", points: open, xLabel: "second", yLabel: "connections"))
        \(stageTable)
        <h2>Latency distribution</h2>
        \(chart(id: "distribution", points: distribution, xLabel: "nines: 1 = p90, 2 = p99, 3 = p99.9, 4 = p99.99", yLabel: "ms"))
        <h2>Percentiles</h2>
        <table id="percentiles">\(rows.joined())</table>
        <h2>Errors</h2>
        <ul id="errors">\(errors.isEmpty ? "<li>none</li>" : errors.joined())</ul>
        </body></html>
        """
    }

    /// A line chart as inline SVG: axes, the extremes as labels, one polyline.
    static func chart(id: String, points: [(Double, Double)], xLabel: String, yLabel: String) -> String {
        let width = 720.0, height = 240.0, left = 64.0, bottom = 36.0, top = 12.0, right = 16.0
        guard let first = points.first else {
            return "<p id=\"\(id)\">(no data)</p>"
        }
        let xs = points.map(\.0), ys = points.map(\.1)
        // + 0: no "-0.0" label for the distribution's p0.
        let xMin = xs.min()! + 0, xMax = max(xs.max()!, xMin + 1)
        let yMax = max(ys.max()! * 1.1, 1e-9)
        func x(_ v: Double) -> Double { left + (v - xMin) / (xMax - xMin) * (width - left - right) }
        func y(_ v: Double) -> Double { height - bottom - v / yMax * (height - bottom - top) }
        let path = (points.count == 1 ? [first, (first.0 + 1, first.1)] : points)
            .map { "\(number(x($0.0), digits: 1)),\(number(y($0.1), digits: 1))" }.joined(separator: " ")
        return """
        <svg id="\(id)" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" xmlns="http://www.w3.org/2000/svg">
        <line class="axis" x1="\(left)" y1="\(height - bottom)" x2="\(width - right)" y2="\(height - bottom)"/>
        <line class="axis" x1="\(left)" y1="\(top)" x2="\(left)" y2="\(height - bottom)"/>
        <text x="\(left - 6)" y="\(top + 10)" text-anchor="end">\(number(yMax, digits: yMax < 10 ? 2 : 0))</text>
        <text x="\(left - 6)" y="\(height - bottom)" text-anchor="end">0</text>
        <text x="\(left)" y="\(height - bottom + 16)">\(number(xMin, digits: 1))</text>
        <text x="\(width - right)" y="\(height - bottom + 16)" text-anchor="end">\(number(xMax, digits: 1))</text>
        <text x="\((left + width - right) / 2)" y="\(height - 6)" text-anchor="middle">\(escape(xLabel))</text>
        <text x="14" y="\((top + height - bottom) / 2)" transform="rotate(-90 14 \((top + height - bottom) / 2))" text-anchor="middle">\(escape(yLabel))</text>
        <polyline class="line" points="\(path)"/>
        </svg>
        """
    }

    static func number(_ value: Double, digits: Int = 0) -> String {
        String(format: "%.\(digits)f", value)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
