#if canImport(Glibc)
import Glibc
#endif

/// The pubsub scenario's figures: every connection subscribes (the servers
/// it is for send each message to the sender too).
struct PubSubFigures: Codable {
    var published: UInt64
    var subscribers: Int
    var deliveries: UInt64
    var expected: UInt64
    var lost: UInt64
    var lossMin: UInt64
    var lossMax: UInt64

    init(_ benches: [Bench]) {
        let published = benches.map(\.published).reduce(0, +)
        self.published = published
        let received = benches.flatMap { $0.connections.filter { $0.socket != nil || $0.deliveries > 0 }.map(\.deliveries) }
        subscribers = received.count
        deliveries = received.reduce(0, +)
        expected = published &* UInt64(subscribers)
        let losses = received.map { published > $0 ? published - $0 : 0 }
        lost = losses.reduce(0, +)
        lossMin = losses.min() ?? 0
        lossMax = losses.max() ?? 0
    }
}

/// One second of a run, as the live line shows it.
struct Sample: Codable {
    var second: Int
    /// connect, warmup or measure.
    var phase: String
    var open: Int
    var messages: Int
    /// The second's 99th percentile (nil: no message came back).
    var p99Microseconds: Double?
    /// Failed connections so far.
    var errors: Int

    /// One second over several loops: counts add up; `p99` is the merged
    /// histogram's (the caller's).
    static func merged(_ samples: [Sample], p99: Double?) -> Sample {
        Sample(second: samples[0].second, phase: samples[0].phase, open: samples.map(\.open).reduce(0, +),
               messages: samples.map(\.messages).reduce(0, +), p99Microseconds: p99,
               errors: samples.map(\.errors).reduce(0, +))
    }

    var liveLine: String {
        let p99 = p99Microseconds.map { $0 >= 1000 ? "\(Int($0 / 100) / 10).\(Int($0 / 100) % 10) ms" : "\(Int($0)) µs" } ?? "-"
        return "[\(second)s \(phase)] open \(open) | \(messages) msg/s | p99 \(p99) | errors \(errors)"
    }
}

struct Report: Codable {
    var connections: Int
    var connected: Int
    var failed: Int
    var size: Int
    var inFlight: Int
    var rate: Double?
    var seconds: Double
    var messages: Int
    var messagesPerSecond: Double
    var megabytesPerSecond: Double
    var latencyMicroseconds: [String: Double]
    var mismatches: Int
    var overloaded: Int
    var firstError: String?
    var clientCPUSeconds: Double
    /// The part of clientCPUSeconds spent in the kernel (system time): on
    /// loopback mostly TCP send and receive, which the server pays alike.
    var clientKernelCPUSeconds: Double
    var serverCPUSeconds: Double?
    var serverKernelCPUSeconds: Double?
    var messagesPerServerCPUSecond: Double?
    var serverRSSBefore: Int?
    var serverRSSAfter: Int?
    var idleBytesPerConnection: Int?
    /// The anonymous part of that growth (RssAnon: heap and stacks). The rest
    /// is file-backed: code and libraries the first connections paged in, a
    /// one-time cost that does not grow with the connections.
    var serverAnonRSSBefore: Int?
    var serverAnonRSSAfter: Int?
    var idleAnonymousBytesPerConnection: Int?
    var minPingsAnswered: Int
    /// [percentile, microseconds] pairs of the whole window's histogram.
    var latencyPercentilesMicroseconds: [[Double]]
    /// Failed connections by class (every class listed, 0 when none).
    var errors: [ErrorClass: Int]
    /// Refused upgrades by HTTP status, and server closes by code.
    var handshakeStatuses: [String: Int]
    var peerCloseCodes: [String: Int]
    /// One sample per second from the first connect.
    var series: [Sample]
    /// Loops (threads) the load ran on.
    var threads: Int
    /// echo, request, connect or idle: for connect, `messages` counts
    /// handshakes and the latency is the handshake's.
    var scenario: String
    /// pubsub: what was published and what reached each connection.
    var pubsub: PubSubFigures?
    /// Ctrl-C ended the run before its duration: the figures are the run so far.
    var interrupted: Bool
    /// A staged run's figures, stage by stage (nil for one steady load).
    var stages: [StageFigures]?

    /// The series as CSV, a header line first.
    func seriesCSV() -> String {
        var lines = ["second,phase,open,messages,p99_us,errors"]
        for s in series {
            lines.append("\(s.second),\(s.phase),\(s.open),\(s.messages),\(s.p99Microseconds.map { String($0) } ?? ""),\(s.errors)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func printed(idle: Bool) -> String {
        func f(_ x: Double, _ digits: Int = 1) -> String {
            var s = String(Int((x * pow(10, Double(digits))).rounded()))
            if digits > 0 {
                while s.count <= digits { s = "0" + s }
                s.insert(".", at: s.index(s.endIndex, offsetBy: -digits))
            }
            return s
        }
        var lines: [String] = []
        if interrupted { lines.append("interrupted (Ctrl-C): the run so far") }
        if let p = pubsub {
            lines.append("pubsub: \(p.published) published, \(p.deliveries) of \(p.expected) deliveries to \(p.subscribers) connections; "
                         + "lost \(p.lost) (per connection \(p.lossMin)-\(p.lossMax))")
        }
        if scenario == "connect" {
            lines.append("connection slots: \(connections), each opening and closing in turn; \(failed) attempts failed")
        } else if stages != nil {
            lines.append("connections: \(connected) open at the end of the plan (its largest stage \(connections)), \(failed) failed")
        } else {
            lines.append("connections: \(connected) of \(connections) open, \(failed) failed")
        }
        if idle {
            if let b = serverRSSBefore, let a = serverRSSAfter {
                lines.append("server RSS: \(b / 1024) KiB before, \(a / 1024) KiB after; \(idleBytesPerConnection ?? 0) B per idle connection")
            }
            if let b = serverAnonRSSBefore, let a = serverAnonRSSAfter {
                lines.append("of which anonymous (RssAnon): \(b / 1024) KiB before, \(a / 1024) KiB after; \(idleAnonymousBytesPerConnection ?? 0) B per idle connection")
            }
            lines.append("pings answered per connection: at least \(minPingsAnswered)")
        } else {
            if scenario == "connect" {
                lines.append("handshakes: \(messages) in \(f(seconds, 2)) s = \(f(messagesPerSecond, 0)) connections opened and closed per second")
            } else {
                lines.append("messages: \(messages) in \(f(seconds, 2)) s = \(f(messagesPerSecond, 0)) msg/s, \(f(megabytesPerSecond)) MB/s each way")
            }
            let l = latencyMicroseconds
            lines.append("latency µs: p50 \(f(l["p50"]!)) p90 \(f(l["p90"]!)) p99 \(f(l["p99"]!)) p99.9 \(f(l["p99.9"]!)) "
                         + "p99.99 \(f(l["p99.99"]!)) max \(f(l["max"]!))")
            func kernelShare(_ kernel: Double, of total: Double) -> String {
                "\(f(100 * kernel / max(total, 1e-9), 0))% in the kernel"
            }
            var cpu = "client CPU: \(f(clientCPUSeconds, 2)) s (\(f(100 * clientCPUSeconds / max(seconds, 1e-9), 0))% of a core, "
                + "\(kernelShare(clientKernelCPUSeconds, of: clientCPUSeconds)))"
            if let s = serverCPUSeconds {
                cpu += ", server CPU: \(f(s, 2)) s (\(f(100 * s / max(seconds, 1e-9), 0))%"
                if let k = serverKernelCPUSeconds { cpu += ", \(kernelShare(k, of: s))" }
                cpu += ")"
                if let m = messagesPerServerCPUSecond { cpu += ", \(f(m, 0)) msg per server-CPU-second" }
            }
            lines.append(cpu)
        }
        for stage in stages ?? [] {
            let l = stage.latencyMicroseconds
            lines.append("stage \(stage.stage): \(stage.connections) connections\(stage.rate.map { ", offered \(f($0, 0)) msg/s" } ?? ""); "
                         + "\(stage.messages) messages in \(f(stage.seconds, 2)) s = \(f(stage.messagesPerSecond, 0)) msg/s; "
                         + "p50 \(f(l["p50"] ?? 0)) p99 \(f(l["p99"] ?? 0)) max \(f(l["max"] ?? 0)) µs; \(stage.errors) failed")
        }
        let classes = ErrorClass.allCases.compactMap { kind in errors[kind].flatMap { $0 > 0 ? "\(kind.rawValue) \($0)" : nil } }
        lines.append("errors: \(classes.isEmpty ? "none" : classes.joined(separator: ", ")); overloaded \(overloaded)"
                     + (firstError.map { "; first: \($0)" } ?? ""))
        return lines.joined(separator: "\n")
    }
}

/// CPU time of a process, split into user and kernel (system) time.
struct CPUTimes {
    var user: Double
    var kernel: Double
    var total: Double { user + kernel }

    static func - (a: CPUTimes, b: CPUTimes) -> CPUTimes {
        CPUTimes(user: a.user - b.user, kernel: a.kernel - b.kernel)
    }
}

enum ProcessStats {
    /// utime and stime of a process, fields 14 and 15 of /proc/PID/stat, in
    /// clock ticks (10 ms here): fine over a window of seconds.
    static func cpuTimes(_ pid: Int32) -> CPUTimes? {
        guard let text = read("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command name, field 3 is at index 0; utime is field 14.
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return nil }
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        return CPUTimes(user: u / tick, kernel: s / tick)
    }

    static func rss(_ pid: Int32) -> Int? { statusBytes(pid, "VmRSS:") }

    /// Resident anonymous memory (heap, stacks), without the file-backed pages.
    static func anonymousRSS(_ pid: Int32) -> Int? { statusBytes(pid, "RssAnon:") }

    private static func statusBytes(_ pid: Int32, _ field: String) -> Int? {
        guard let text = read("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }

    static func selfCPU() -> CPUTimes {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return CPUTimes(user: Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6,
                        kernel: Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6)
    }

    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        if fd < 0 { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, 4096) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
