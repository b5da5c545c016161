import Foundation

/// The `pubsub` scenario, for servers that send each message of a topic to
/// every member (this project's chat sample, a broadcast server): the first
/// --publishers connections of loop 0 publish at --rate in all, text
/// messages that carry their send time; every connection counts what reaches
/// it and records each delivery's latency, from the publisher's send to the
/// subscriber's receipt (one clock, the process's). Publishing stops at the
/// end of the window and the subscribers get a second to drain; what never
/// arrived is each subscriber's loss.
///
/// A message: `ws-bench <sent-ns> <publisher> <n>` and padding to --size.
/// Anything else the server sends (a chat's join notices) is not counted.
enum PubSubMessage {
    static let prefix = Array("ws-bench ".utf8)

    static func make(sentAt: UInt64, publisher: Int, number: UInt64, size: Int) -> String {
        let head = "ws-bench \(sentAt) \(publisher) \(number)"
        return head.count >= size ? head : head + String(repeating: " ", count: size - head.count)
    }

    /// The send time a delivery carries, or nil for a message not ours.
    static func sentAt(_ message: UnsafeRawBufferPointer) -> UInt64? {
        guard message.count > prefix.count, message.starts(with: prefix) else { return nil }
        var value: UInt64 = 0
        var index = prefix.count
        while index < message.count, message[index] >= 0x30, message[index] <= 0x39 {
            value = value &* 10 &+ UInt64(message[index] &- 0x30)
            index += 1
        }
        return index > prefix.count ? value : nil
    }
}

extension Bench {
    /// Loop 0's first --publishers connections publish.
    func isPublisher(_ id: Int) -> Bool {
        config.scenario == .pubsub && config.loopIndex == 0 && id < config.publishers
    }

    /// Publishes what is due at --rate, round robin over the publishers,
    /// each message stamped with its intended send time.
    func publishAtRate() {
        guard let rate = config.rate, publishing else { return }
        let now = Bench.nanoseconds()
        let due = Int(Double(now - rateStart) / 1e9 * rate) - Int(scheduled)
        if due <= 0 { return }
        let publishers = connections.filter { $0.state == .running && isPublisher($0.id) }
        if publishers.isEmpty { return }
        for i in 0..<due {
            let intended = rateStart + UInt64((scheduled + Double(i)) / rate * 1e9)
            let publisher = publishers[rateCursor % publishers.count]
            var text = PubSubMessage.make(sentAt: intended, publisher: publisher.id, number: published,
                                          size: config.size)
            text.withUTF8 { _ = publisher.socket?.send(UnsafeRawBufferPointer($0), type: .text) }
            published += 1
            rateCursor += 1
        }
        scheduled += Double(due)
    }

    /// The end of the window: publishing stops, deliveries drain for a
    /// second, then the run ends.
    func stopPublishing() {
        publishing = false
        _ = timer(after: 1000) { [unowned self] in finish() }
    }
}
