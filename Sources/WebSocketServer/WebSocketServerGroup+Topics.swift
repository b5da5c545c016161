import UVKit
import WebSocketCore
import WebSocketRuntime

/// Carries publications between servers: a Redis backplane
/// (`WebSocketBackplane.RedisBackplane`), or anything that can deliver a
/// topic's messages across processes. A group drives it on loop 0: every
/// call below, and every `deliver`, is on that loop's thread.
///
/// - The group hands it each publication made in this process, once, in the
///   order published (`publish`), never one it delivered itself (no echo).
/// - It subscribes to a topic while some loop of the group has a subscriber
///   to it, and no longer (`subscribe` and `unsubscribe`).
public protocol TopicBackplane: AnyObject {
    /// Starts on `loop` (the group's loop 0). `deliver` hands a publication
    /// from another server to this group's subscribers; the view is valid
    /// for the call only.
    func start(on loop: EventLoop, deliver: @escaping (_ topic: String, _ payload: UnsafeRawBufferPointer, _ type: MessageType) -> Void)
    func publish(_ payload: UnsafeRawBufferPointer, type: MessageType, topic: String)
    func subscribe(_ topic: String)
    func unsubscribe(_ topic: String)
    /// The group is shutting down: close what it opened on the loop.
    func stop()
}

/// Where a publication comes from: this process, or another server through
/// the backplane (which must not get it back).
enum PublicationOrigin: UInt16 {
    case local = 0
    case backplane = 1
}

extension WebSocketServerGroup {
    /// `WebSocketServer.publish` from any thread: a handler's loop delivers
    /// before this returns, the others on their next turn, and the backplane
    /// (if any) carries it to other servers. Returns how many loops took it.
    @discardableResult
    public func publish(_ payload: UnsafeRawBufferPointer, type: MessageType, to topic: String) -> Int {
        if let here = currentLoop {
            servers[here].publish(payload, type: type, to: topic)
            return loopCount
        }
        return forwardPublication(SharedMessage(payload, type: type), topic: topic, from: nil, origin: .local)
    }

    /// `publish(_:type:to:)` for a text message; any thread.
    @discardableResult
    public func publish(text: String, to topic: String) -> Int {
        var text = text
        return text.withUTF8 { publish(UnsafeRawBufferPointer($0), type: .text, to: topic) }
    }

    /// Attaches a backplane; set-up time only (before `run()`).
    public func use(backplane: TopicBackplane) {
        self.backplane = backplane
    }

    /// Posts `message` to every loop but `from` (the loop that delivered it
    /// already); a local publication made on loop 0 goes to the backplane
    /// here, one made elsewhere when loop 0 takes it from its inbox. Returns
    /// how many loops took it, `from` included.
    @discardableResult
    func forwardPublication(_ message: SharedMessage, topic: String, from: Int?, origin: PublicationOrigin) -> Int {
        if from == 0 && origin == .local { sendToBackplane(message, topic: topic) }
        var posted = from == nil ? 0 : 1
        var name = topic
        name.withUTF8 { topicBytes in
            for index in 0..<loopCount where index != from {
                var command = LoopCommand(.publish)
                command.code = origin.rawValue
                command.object = Unmanaged.passRetained(message).toOpaque()
                if inboxes[index].post(command, payload: UnsafeRawBufferPointer(topicBytes)) {
                    posted += 1
                } else {
                    Unmanaged<SharedMessage>.fromOpaque(command.object!).release()
                }
            }
        }
        return posted
    }

    /// Loop 0: a publication made in this process goes to the backplane.
    func sendToBackplane(_ message: SharedMessage, topic: String) {
        backplane?.publish(message.payload, type: message.type, topic: topic)
    }

    /// A loop's first or last subscriber of `topic` came or went: loop 0
    /// counts the loops that hold it and tells the backplane at 0 and 1.
    func topicInterestChanged(_ topic: String, interested: Bool, on loop: Int) {
        guard backplane != nil else { return }
        if loop == 0 {
            countInterest(topic, interested: interested)
            return
        }
        var command = LoopCommand(.interest)
        command.code = interested ? 1 : 0
        var name = topic
        // A control record: interest must reach loop 0 even past the limit.
        name.withUTF8 { _ = inboxes[0].post(command, payload: UnsafeRawBufferPointer($0), control: true) }
    }

    /// Loop 0 only.
    func countInterest(_ topic: String, interested: Bool) {
        guard let backplane else { return }
        let before = loopsInterested[topic, default: 0]
        let after = max(0, before + (interested ? 1 : -1))
        loopsInterested[topic] = after == 0 ? nil : after
        if before == 0 && after > 0 { backplane.subscribe(topic) }
        if before > 0 && after == 0 { backplane.unsubscribe(topic) }
    }

    /// Loop 0: a publication from another server, for every loop here.
    func deliverFromBackplane(_ topic: String, _ payload: UnsafeRawBufferPointer, _ type: MessageType) {
        let message = SharedMessage(payload, type: type)
        _ = servers[0].publishHere(message.payload, type: type, header: message.header, topic: topic)
        if loopCount > 1 { forwardPublication(message, topic: topic, from: 0, origin: .backplane) }
    }

    /// Loop 0, as `run()` starts it.
    func startBackplane() {
        backplane?.start(on: servers[0].loop) { [weak self] topic, payload, type in
            self?.deliverFromBackplane(topic, payload, type)
        }
    }
}
