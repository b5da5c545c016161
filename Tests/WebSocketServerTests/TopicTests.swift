import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import UVKit
import WebSocketCore
import WebSocketServer

/// Text commands from the peer: "sub:T", "unsub:T", "pub:T:text", "topics";
/// anything else is echoed, so a test can interleave a connection's own
/// sends with the publications it receives.
final class TopicCommands: WebSocketHandler, @unchecked Sendable {
    func didReceive(_ connection: WebSocketConnection<TopicCommands>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        // A command is a whole message: a burst's frame may straddle reads
        // and arrive in chunks.
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        let text = String(decoding: message, as: UTF8.self)
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "sub" where parts.count >= 2:
            connection.send(text: connection.subscribe(parts[1]) ? "subscribed \(parts[1])" : "already \(parts[1])")
        case "unsub" where parts.count >= 2:
            connection.send(text: connection.unsubscribe(parts[1]) ? "left \(parts[1])" : "not in \(parts[1])")
        case "pub" where parts.count == 3:
            if let group = connection.server?.group {
                group.publish(text: parts[2], to: parts[1])
            } else {
                connection.server?.publish(text: parts[2], to: parts[1])
            }
        case "topics":
            connection.send(text: connection.topics.sorted().joined(separator: ","))
        default:
            connection.send(message, type: type)
        }
    }
}

@Suite("Topics: subscribe, unsubscribe, publish")
struct TopicTableTests {
    @Test("subscribe, a second subscribe, unsubscribe, close while subscribed, publish to nobody")
    func bookkeeping() {
        var table = TopicTable()
        #expect(table.subscribe(slot: 3, to: "a") == (true, .firstSubscriber))
        #expect(table.subscribe(slot: 3, to: "a") == (false, .unchanged))
        #expect(table.subscribe(slot: 5, to: "a") == (true, .unchanged))
        #expect(table.subscribe(slot: 5, to: "b") == (true, .firstSubscriber))
        #expect(table.subscribers(of: "a").sorted() == [3, 5])
        #expect(table.subscribers(of: "nobody").isEmpty)
        #expect(table.unsubscribe(slot: 3, from: "b") == (false, .unchanged))
        #expect(table.unsubscribe(slot: 3, from: "a") == (true, .unchanged))
        #expect(table.subscribers(of: "a") == [5])
        #expect(table.removeAll(slot: 5).sorted() == ["a", "b"])
        #expect(table.topicCount == 0)
        #expect(table.subscriptionCount == 0)
        // A freed topic id is reused for the next new topic.
        #expect(table.subscribe(slot: 1, to: "c") == (true, .firstSubscriber))
        #expect(table.topics(of: 1) == ["c"])
    }

    @Test("random subscribes and leaves agree with a model, positions mended after every removal")
    func againstAModel() {
        var table = TopicTable()
        var model: [String: Set<Int32>] = [:]
        let random = FuzzRandom(seed: 7)
        for _ in 0..<20_000 {
            let slot = Int32(random.below(64))
            let topic = "t\(random.below(12))"
            switch random.below(5) {
            case 0, 1:
                let fresh = model[topic]?.contains(slot) != true
                #expect(table.subscribe(slot: slot, to: topic).subscribed == fresh)
                model[topic, default: []].insert(slot)
            case 2, 3:
                let present = model[topic]?.contains(slot) == true
                #expect(table.unsubscribe(slot: slot, from: topic).unsubscribed == present)
                model[topic]?.remove(slot)
                if model[topic]?.isEmpty == true { model[topic] = nil }
            default:
                let held = Set(model.filter { $0.value.contains(slot) }.keys)
                let emptied = Set(table.removeAll(slot: slot))
                for name in held { model[name]?.remove(slot) }
                for (name, slots) in model where slots.isEmpty { model[name] = nil }
                #expect(emptied == held.filter { model[$0] == nil })
            }
        }
        for (topic, slots) in model { #expect(Set(table.subscribers(of: topic)) == slots) }
        #expect(table.topicCount == model.count)
        #expect(table.subscriptionCount == model.values.map(\.count).reduce(0, +))
        _ = random
    }
}

@Suite("Topics over real sockets", .serialized)
struct TopicDeliveryTests {
    @Test("a publication reaches every subscriber once and nobody else; a closed connection leaves its topics")
    func delivery() throws {
        let harness = try ServerHarness(handler: TopicCommands())
        defer { harness.stop() }
        let a = try TestClient(port: harness.port), b = try TestClient(port: harness.port), c = try TestClient(port: harness.port)
        for (client, topic) in [(a, "news"), (b, "news"), (c, "sport")] {
            try client.sendText("sub:\(topic)")
            #expect(try client.nextMessage() == .message(.text, Array("subscribed \(topic)".utf8)))
        }
        try a.sendText("sub:news")
        #expect(try a.nextMessage() == .message(.text, Array("already news".utf8)))
        try c.sendText("pub:news:hello")
        #expect(try a.nextMessage() == .message(.text, Array("hello".utf8)))
        #expect(try b.nextMessage() == .message(.text, Array("hello".utf8)))
        try c.sendText("topics")
        // c got nothing from "news": its next message is the answer.
        #expect(try c.nextMessage() == .message(.text, Array("sport".utf8)))
        try b.sendClose(1000)
        _ = try b.nextMessage()
        b.shutdownWrite()
        #expect(waitUntil { harness.onLoop { $0.subscriberCount(of: "news") } == 1 })
        try c.sendText("pub:nobody:x")
        try c.sendText("pub:news:after")
        #expect(try a.nextMessage() == .message(.text, Array("after".utf8)))
        #expect(harness.metrics.publications >= 2)
    }

    @Test("a connection's own replies and the publications it gets keep their order")
    func ordering() throws {
        let harness = try ServerHarness(handler: TopicCommands())
        defer { harness.stop() }
        let subscriber = try TestClient(port: harness.port), publisher = try TestClient(port: harness.port)
        try subscriber.sendText("sub:t")
        _ = try subscriber.nextMessage()
        var expected: [String] = []
        for i in 0..<200 {
            try publisher.sendText("pub:t:p\(i)")
            try subscriber.sendText("own\(i)")
            expected.append("p\(i)")
        }
        var publications: [String] = []
        var own: [String] = []
        while publications.count < 200 || own.count < 200 {
            guard case .message(_, let bytes) = try subscriber.nextMessage() else { break }
            let text = String(decoding: bytes, as: UTF8.self)
            if text.hasPrefix("p") { publications.append(text) } else { own.append(text) }
        }
        #expect(publications == expected)
        #expect(own == (0..<200).map { "own\($0)" })
    }

    @Test("a burst to two topics in one read: each subscriber gets its topics' messages in order, each counted once")
    func burstAcrossTopics() throws {
        let harness = try ServerHarness(handler: TopicCommands())
        defer { harness.stop() }
        let first = try TestClient(port: harness.port), second = try TestClient(port: harness.port)
        let both = try TestClient(port: harness.port), publisher = try TestClient(port: harness.port)
        for (client, topics) in [(first, ["a"]), (second, ["b"]), (both, ["a", "b"])] {
            for topic in topics {
                try client.sendText("sub:\(topic)")
                _ = try client.nextMessage()
            }
        }
        let sentBefore = harness.metrics.messagesSent
        // One write, so the server reads the burst in one callback and stages
        // it in one turn: runs to one topic lengthen one reference, and a
        // change of topic starts another.
        let topicOf = (0..<120).map { $0 % 7 < 4 ? "a" : "b" }
        var burst: [UInt8] = []
        for (i, topic) in topicOf.enumerated() { burst += publisher.encodeFrame(.text, Array("pub:\(topic):\(topic)\(i)".utf8)) }
        try publisher.send(burst)
        func received(_ client: TestClient, count: Int) throws -> [String] {
            try (0..<count).map { _ in
                guard case .message(.text, let bytes) = try client.nextMessage() else { return "?" }
                return String(decoding: bytes, as: UTF8.self)
            }
        }
        let all = topicOf.enumerated().map { "\($0.element)\($0.offset)" }
        let inA = all.filter { $0.hasPrefix("a") }, inB = all.filter { $0.hasPrefix("b") }
        #expect(try received(both, count: all.count) == all)
        #expect(try received(first, count: inA.count) == inA)
        #expect(try received(second, count: inB.count) == inB)
        try first.sendText("topics")
        #expect(try first.nextMessage() == .message(.text, Array("a".utf8)))
        #expect(waitUntil { harness.metrics.messagesSent - sentBefore == 2 * all.count + 1 })
    }

    @Test("a subscriber that does not read is dropped for, counted, and stalls nobody")
    func slowSubscriber() throws {
        var options = WebSocketOptions()
        options.maxBackpressure = 64 * 1024
        let harness = try ServerHarness(options: options, handler: TopicCommands())
        defer { harness.stop(drainTimeout: .zero) }
        let slow = try TestClient(port: harness.port), fast = try TestClient(port: harness.port)
        let publisher = try TestClient(port: harness.port)
        for client in [slow, fast] {
            try client.sendText("sub:big")
            _ = try client.nextMessage()
        }
        let chunk = String(repeating: "x", count: 16 * 1024)
        let count = 400
        let reader = Thread {
            for _ in 0..<count { _ = try? fast.nextMessage() }
        }
        reader.start()
        for i in 0..<count { try publisher.sendText("pub:big:\(i)\(chunk)") }
        #expect(waitUntil { reader.isFinished })
        let metrics = harness.metrics
        #expect(metrics.topicMessagesDropped > 0)
        #expect(metrics.topicMessagesSent + metrics.topicMessagesDropped == 2 * count)
    }

    @Test("in a group, a publication from one loop's handler and from another thread reaches every loop, in order")
    func acrossLoops() throws {
        let group = try WebSocketServerGroup(loops: 2, distribution: .roundRobin, logger: quietLogger()) { _ in TopicCommands() }
        group.route(webSocket: "/ws")
        let port = try group.listen(port: 0)
        let running = Thread { try? group.run() }
        running.start()
        defer {
            group.requestShutdown(drainTimeout: .zero)
            _ = waitUntil { running.isFinished }
        }
        // Round robin: consecutive connections land on alternate loops.
        let clients = try (0..<4).map { _ in try TestClient(port: port) }
        for client in clients {
            try client.sendText("sub:room")
            _ = try client.nextMessage()
        }
        for i in 0..<50 { try clients[0].sendText("pub:room:h\(i)") }
        for i in 0..<50 { group.publish(text: "f\(i)", to: "room") }
        for client in clients {
            var handler: [String] = [], foreign: [String] = []
            while handler.count + foreign.count < 100 {
                guard case .message(_, let bytes) = try client.nextMessage() else { break }
                let text = String(decoding: bytes, as: UTF8.self)
                if text.hasPrefix("h") { handler.append(text) } else { foreign.append(text) }
            }
            #expect(handler == (0..<50).map { "h\($0)" })
            #expect(foreign == (0..<50).map { "f\($0)" })
        }
        let (total, perLoop) = group.metrics()
        #expect(perLoop.allSatisfy { $0.publications == 100 })
        #expect(total.topicMessagesSent == 400)
    }
}

/// The resident memory of this process in bytes (`VmRSS`).
func residentBytes() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
}

@Suite("Topics: memory")
struct TopicMemoryTests {
    /// The table's bytes per subscription at 100,000 subscriptions: 10,000
    /// connections, each in 10 of 1,000 topics, measured as the growth of
    /// resident memory in a fresh child process (no freed memory of other
    /// tests to reuse). docs/benchmarks.md quotes the figure it prints.
    @Test("100,000 subscriptions cost at most 64 bytes each in the topic table")
    func bytesPerSubscription() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardOutputContent]) {
            let before = residentBytes()
            var table = TopicTable()
            for slot in 0..<10_000 {
                for k in 0..<10 { _ = table.subscribe(slot: Int32(slot), to: "topic-\((slot &* 7 &+ k &* 131) % 1000)") }
            }
            let perSubscription = Double(residentBytes() - before) / Double(table.subscriptionCount)
            print("topic table: \(table.subscriptionCount) subscriptions over \(table.topicCount) topics, \(Int(perSubscription.rounded())) bytes each")
            // AddressSanitizer pads every allocation: the bound holds for the
            // table, not for its instrumented build.
            let instrumented = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil
            exit(table.subscriptionCount == 100_000 && (instrumented || perSubscription <= 64) ? 0 : 1)
        }
        if let result { print(String(decoding: result.standardOutputContent, as: UTF8.self)) }
    }
}
