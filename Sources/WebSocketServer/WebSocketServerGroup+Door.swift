import Dispatch
import UVKit
import WebSocketCore
import WebSocketRuntime

/// The door in from any thread. Each call posts a record to the inbox of the
/// loop concerned and returns at once; the loop carries it out on its next
/// turn, in the order records reached its inbox (so one thread's sends to a
/// connection arrive in the order it made them).
extension WebSocketServerGroup {
    /// Sends one message to the connection `id` names. False when the
    /// message could not be posted: the loop has shut down or its inbox is
    /// past `inboxLimit` (try later, or drop). True means posted: the loop
    /// then sends it as `send` would, or drops it if the connection has gone
    /// or is in the middle of a fragmented message of its own (RFC 6455
    /// §5.4). `payload` is copied before this returns.
    @discardableResult
    public func send(_ payload: UnsafeRawBufferPointer, type: MessageType, to id: ConnectionID) -> Bool {
        guard id.loop < loopCount else { return false }
        var command = LoopCommand(.send, to: id)
        command.messageType = type
        return inboxes[id.loop].post(command, payload: payload)
    }

    /// `send(_:type:to:)` for a text message; any thread.
    @discardableResult
    public func send(text: String, to id: ConnectionID) -> Bool {
        var text = text
        return text.withUTF8 { send(UnsafeRawBufferPointer($0), type: .text, to: id) }
    }

    /// Starts the closing handshake of the connection `id` names (a close
    /// frame with `code` and `reason`; the loop cuts the reason to 123 bytes
    /// at a code point, as `connection.close` does).
    @discardableResult
    public func close(_ id: ConnectionID, code: CloseCode = .normalClosure, reason: String = "") -> Bool {
        guard id.loop < loopCount else { return false }
        var command = LoopCommand(.close, to: id)
        command.code = code.rawValue
        var reason = reason
        return reason.withUTF8 { inboxes[id.loop].post(command, payload: UnsafeRawBufferPointer($0)) }
    }

    /// Sends one message to every open connection of every loop, framed once
    /// into a reference-counted buffer that each loop writes by reference.
    /// From a loop's own thread (a handler), that loop's connections get it
    /// before this returns, as `server.broadcast` does; the others on their
    /// next turn. Returns how many loops took it (a loop that has stopped,
    /// or whose inbox is full, does not).
    @discardableResult
    public func broadcast(_ payload: UnsafeRawBufferPointer, type: MessageType) -> Int {
        if let here = currentLoop { return servers[here].broadcastEverywhere(payload, type: type).loops }
        return forward(SharedMessage(payload, type: type), except: nil)
    }

    /// `broadcast(_:type:)` for a text message.
    @discardableResult
    public func broadcast(text: String) -> Int {
        var text = text
        return text.withUTF8 { broadcast(UnsafeRawBufferPointer($0), type: .text) }
    }

    /// Posts `message` to every loop but `except`; returns how many took it.
    @discardableResult
    func forward(_ message: SharedMessage, except: Int?) -> Int {
        var posted = except == nil ? 0 : 1
        for index in 0..<loopCount where index != except {
            var command = LoopCommand(.broadcast)
            // Each loop holds the message until it has written it.
            command.object = Unmanaged.passRetained(message).toOpaque()
            if inboxes[index].post(command) {
                posted += 1
            } else {
                Unmanaged<SharedMessage>.fromOpaque(command.object!).release()
            }
        }
        return posted
    }

    /// Graceful shutdown of every loop: each stops accepting, sends 1001 to
    /// its peers and drains up to `drainTimeout`; `run()` returns once every
    /// loop has closed its handles.
    public func requestShutdown(drainTimeout: Duration = .seconds(5)) {
        var command = LoopCommand(.shutdown)
        command.milliseconds = drainTimeout.milliseconds
        for inbox in inboxes { inbox.post(command, control: true) }
    }

    /// Each loop's counters, read on its own thread (no lock on the message
    /// path), then `completion` with the sum and the per-loop figures, on the
    /// thread of the last loop to answer. A loop that has stopped answers
    /// with its final figures.
    public func collectMetrics(_ completion: @escaping @Sendable (_ total: WebSocketMetrics, _ perLoop: [WebSocketMetrics]) -> Void) {
        let gathering = MetricsGathering(loops: loopCount, completion: completion)
        for index in 0..<loopCount {
            var command = LoopCommand(.report)
            command.slot = Int32(index)
            command.object = Unmanaged.passRetained(gathering).toOpaque()
            if !inboxes[index].post(command, control: true) {
                Unmanaged<MetricsGathering>.fromOpaque(command.object!).release()
                gathering.deliver(finalMetrics(of: index) ?? WebSocketMetrics(), from: index)
            }
        }
    }

    /// `collectMetrics`, waited for; before `run()` it waits until the loops
    /// run. On a loop's own thread (a handler), which must not wait for the
    /// other loops (two handlers asking each other's loops would both wait
    /// for ever), it answers at once: its own loop's figures as they are,
    /// the others' as each last published them (every quarter second).
    public func metrics() -> (total: WebSocketMetrics, perLoop: [WebSocketMetrics]) {
        if let here = currentLoop {
            var perLoop = published.map { slot in slot.withLock { $0 } }
            perLoop[here] = servers[here].metrics
            var total = WebSocketMetrics()
            for part in perLoop { total.add(part) }
            return (total, perLoop)
        }
        let answer = Lock<(WebSocketMetrics, [WebSocketMetrics])?>(nil)
        let done = DispatchSemaphore(value: 0)
        collectMetrics { total, perLoop in
            answer.withLock { $0 = (total, perLoop) }
            done.signal()
        }
        done.wait()
        let (total, perLoop) = answer.withLock { $0 }!
        return (total, perLoop)
    }
}

extension WebSocketServerGroup {
    /// `collectMetrics` for Swift concurrency: suspends, rather than blocks,
    /// until every loop has answered.
    public func metrics() async -> (total: WebSocketMetrics, perLoop: [WebSocketMetrics]) {
        await withCheckedContinuation { continuation in
            collectMetrics { total, perLoop in continuation.resume(returning: (total, perLoop)) }
        }
    }
}

/// Figures from each loop, summed once the last arrives.
final class MetricsGathering: Sendable {
    private let parts: Lock<[WebSocketMetrics?]>
    private let completion: @Sendable (WebSocketMetrics, [WebSocketMetrics]) -> Void

    init(loops: Int, completion: @escaping @Sendable (WebSocketMetrics, [WebSocketMetrics]) -> Void) {
        parts = Lock(Array(repeating: nil, count: loops))
        self.completion = completion
    }

    func deliver(_ metrics: WebSocketMetrics, from loop: Int) {
        let all = parts.withLock { parts -> [WebSocketMetrics]? in
            parts[loop] = metrics
            return parts.contains { $0 == nil } ? nil : parts.map { $0! }
        }
        guard let all else { return }
        var total = WebSocketMetrics()
        for part in all { total.add(part) }
        completion(total, all)
    }
}
