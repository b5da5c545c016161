import UVKit
import WebSocketCore
import WebSocketRuntime

/// What one publication did on this loop (`BroadcastResult`'s counts for its
/// subscribers here).
public typealias PublishResult = BroadcastResult

extension WebSocketConnection {
    /// Subscribes this connection to `topic` (an exact name; no wildcards), so
    /// that every `publish` to it reaches this connection. False when it
    /// already was, or is not an open connection of a server. A connection
    /// leaves its topics when it closes.
    @discardableResult
    public func subscribe(_ topic: String) -> Bool {
        guard isOpen, let server else { return false }
        return server.subscribe(self, to: topic)
    }

    /// Leaves `topic`; false if this connection was not subscribed.
    @discardableResult
    public func unsubscribe(_ topic: String) -> Bool {
        guard let server else { return false }
        return server.unsubscribe(self, from: topic)
    }

    /// The topics this connection is subscribed to.
    public var topics: [String] {
        guard let server, tableSlot >= 0 else { return [] }
        return server.topicTable.topics(of: tableSlot)
    }
}

extension WebSocketServer {
    func subscribe(_ connection: WebSocketConnection<Handler>, to topic: String) -> Bool {
        loop.checkThread("WebSocketConnection.subscribe")
        guard connection.tableSlot >= 0 else { return false }
        let (subscribed, change) = topicTable.subscribe(slot: connection.tableSlot, to: topic)
        if change == .firstSubscriber { topicInterestChanged(topic, interested: true) }
        return subscribed
    }

    func unsubscribe(_ connection: WebSocketConnection<Handler>, from topic: String) -> Bool {
        loop.checkThread("WebSocketConnection.unsubscribe")
        guard connection.tableSlot >= 0 else { return false }
        let (unsubscribed, change) = topicTable.unsubscribe(slot: connection.tableSlot, from: topic)
        if change == .lastSubscriberLeft { topicInterestChanged(topic, interested: false) }
        return unsubscribed
    }

    /// A closed connection's topics: left, each one that empties reported.
    func leaveTopics(slot: Int32) {
        for topic in topicTable.removeAll(slot: slot) { topicInterestChanged(topic, interested: false) }
    }

    /// How many connections of this loop hold `topic`.
    public func subscriberCount(of topic: String) -> Int {
        loop.checkThread("WebSocketServer.subscriberCount")
        return topicTable.subscribers(of: topic).count
    }

    /// Sends one message to every subscriber of `topic`: on this loop before
    /// this returns, and in a group on every other loop on its next turn. It
    /// is framed once (into a buffer every loop writes by reference) and
    /// compressed once per loop for the peers that share the server's window;
    /// a subscriber whose queue is at `maxBackpressure` gets it dropped and
    /// counted (`topicMessagesDropped`), never stalling the others. A
    /// backplane (`TopicBackplane`) carries it to other servers.
    ///
    /// Order: one publisher's publications to a topic reach each subscriber
    /// in the order published, and go through the same queue as the
    /// connection's own sends, so those keep their order too.
    ///
    /// Loop thread only; from other threads, `WebSocketServerGroup.publish`.
    @discardableResult
    public func publish(_ payload: UnsafeRawBufferPointer, type: MessageType, to topic: String) -> PublishResult {
        loop.checkThread("WebSocketServer.publish")
        if let group, group.loopCount > 1 || group.backplane != nil {
            let message = SharedMessage(payload, type: type)
            group.forwardPublication(message, topic: topic, from: loopIndex, origin: .local)
            return publishHere(message.payload, type: type, header: message.header, topic: topic)
        }
        return FrameWriter.withHeader(opcode: type.opcode, fin: true, payloadLength: payload.count) { header in
            publishHere(payload, type: type, header: header, topic: topic)
        }
    }

    /// `publish(_:type:to:)` for a text message.
    @discardableResult
    public func publish(text: String, to topic: String) -> PublishResult {
        var text = text
        return text.withUTF8 { publish(UnsafeRawBufferPointer($0), type: .text, to: topic) }
    }

    /// This loop's part of a publication.
    func publishHere(_ payload: UnsafeRawBufferPointer, type: MessageType, header: UnsafeRawBufferPointer,
                     topic: String) -> PublishResult {
        // The table's own array (shared, not copied): nothing a send does
        // changes the table (a connection lost in a send closes later).
        let slots = topicTable.subscribers(of: topic)
        guard !slots.isEmpty else { return PublishResult() }
        // The common case, inside a callback and without compression: the
        // frame is staged once and each subscriber references it. The loop
        // below is the per-subscriber cost of a publication, so it reaches
        // them unretained, with one access to each table per publication.
        if endpoint.deflate == nil, let frame = endpoint.context.stageFrame(header: header, payload: payload) {
            var result = PublishResult()
            let limit = options.maxBackpressure
            unretainedBySlot.withUnsafeBufferPointer { table in
                slots.withUnsafeBufferPointer { subscribers in
                    for slot in subscribers {
                        guard let connection = table[Int(slot)] else { continue }
                        result.count(connection._withUnsafeGuaranteedRef {
                            $0.stagePublication(frame, queueLimit: limit)
                        })
                    }
                }
            }
            // The counters `sendStagedPublication` keeps per send, once for all.
            let delivered = result.sent &+ result.backpressure
            endpoint.metrics.messagesSent &+= delivered
            endpoint.metrics.bytesSent &+= delivered &* payload.count
            endpoint.metrics.publications &+= 1
            endpoint.metrics.topicMessagesSent &+= result.sent &+ result.backpressure
            endpoint.metrics.topicMessagesDropped &+= result.dropped
            return result
        }
        let result = deliver(payload, type: type, header: header, skipsFullQueues: true) { body in
            for slot in slots {
                if let connection = connections[slot], connection.isOpen { body(connection) } else { }
            }
        }
        endpoint.metrics.publications &+= 1
        endpoint.metrics.topicMessagesSent &+= result.sent &+ result.backpressure
        endpoint.metrics.topicMessagesDropped &+= result.dropped
        return result
    }

    /// A topic gained its first subscriber on this loop, or lost its last:
    /// the group's backplane subscribes or unsubscribes across servers.
    func topicInterestChanged(_ topic: String, interested: Bool) {
        group?.topicInterestChanged(topic, interested: interested, on: loopIndex)
    }
}
