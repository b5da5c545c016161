/// One loop's topics: which connections hold each (by their slot in the
/// server's connection table) and which topics each connection holds, so that
/// a subscribe, an unsubscribe and a connection's close each cost O(that
/// connection's topics), and a publish walks one array of slots.
///
/// A topic's subscribers are a dense array of 4-byte slots (removal moves the
/// last one into the gap); each subscription is also kept, as a topic id and
/// its position in that array, in its connection's list, so the moved one's
/// position can be mended. Topic ids are reused once a topic has nobody.
package struct TopicTable {
    package struct Subscription {
        var topic: Int32
        var position: Int32
    }

    /// What a change did to the topic as a whole (a backplane subscribes to a
    /// topic while this loop has a subscriber, and no longer).
    package enum Change: Equatable {
        case unchanged
        /// The topic had nobody here before.
        case firstSubscriber
        /// The topic has nobody here now.
        case lastSubscriberLeft
    }

    private var idsByName: [String: Int32] = [:]
    private var names: [String] = []
    private var subscribersByTopic: [[Int32]] = []
    private var freeTopics: [Int32] = []
    private var bySlot: [[Subscription]] = []
    /// Subscriptions over all topics.
    package private(set) var subscriptionCount = 0

    package init() {}

    /// Topics with at least one subscriber.
    package var topicCount: Int { idsByName.count }

    /// Subscribes the connection in `slot`; false (nothing changed) if it
    /// already was.
    package mutating func subscribe(slot: Int32, to name: String) -> (subscribed: Bool, change: Change) {
        let s = Int(slot)
        if s >= bySlot.count { bySlot.append(contentsOf: repeatElement([], count: s + 1 - bySlot.count)) }
        let id: Int32
        var change = Change.unchanged
        if let existing = idsByName[name] {
            id = existing
            if bySlot[s].contains(where: { $0.topic == id }) { return (false, .unchanged) }
        } else {
            if let reused = freeTopics.popLast() {
                id = reused
                names[Int(id)] = name
            } else {
                id = Int32(names.count)
                names.append(name)
                subscribersByTopic.append([])
            }
            idsByName[name] = id
            change = .firstSubscriber
        }
        bySlot[s].append(Subscription(topic: id, position: Int32(subscribersByTopic[Int(id)].count)))
        subscribersByTopic[Int(id)].append(slot)
        subscriptionCount += 1
        return (true, change)
    }

    /// Unsubscribes the connection in `slot`; false if it was not subscribed.
    package mutating func unsubscribe(slot: Int32, from name: String) -> (unsubscribed: Bool, change: Change) {
        let s = Int(slot)
        guard let id = idsByName[name], s < bySlot.count,
              let index = bySlot[s].firstIndex(where: { $0.topic == id }) else { return (false, .unchanged) }
        let position = bySlot[s][index].position
        bySlot[s].remove(at: index)
        return (true, removeSubscriber(topic: id, at: position))
    }

    /// The connection in `slot` leaves every topic (it has closed); returns
    /// the topics that now have nobody here.
    package mutating func removeAll(slot: Int32) -> [String] {
        let s = Int(slot)
        guard s < bySlot.count, !bySlot[s].isEmpty else { return [] }
        let subscriptions = bySlot[s]
        bySlot[s] = []
        var emptied: [String] = []
        for subscription in subscriptions {
            let name = names[Int(subscription.topic)]
            if removeSubscriber(topic: subscription.topic, at: subscription.position) == .lastSubscriberLeft {
                emptied.append(name)
            }
        }
        return emptied
    }

    /// The slots subscribed to `name` (empty if none): the table's own array,
    /// shared rather than copied while nothing changes it.
    package func subscribers(of name: String) -> [Int32] {
        guard let id = idsByName[name] else { return [] }
        return subscribersByTopic[Int(id)]
    }

    /// The topics the connection in `slot` holds.
    package func topics(of slot: Int32) -> [String] {
        let s = Int(slot)
        guard s < bySlot.count else { return [] }
        return bySlot[s].map { names[Int($0.topic)] }
    }

    /// Every topic with a subscriber here (a backplane's resubscription).
    package var allTopics: [String] { Array(idsByName.keys) }

    /// Takes the subscriber at `position` out of `topic`, moving the last one
    /// into its place and mending that one's recorded position.
    private mutating func removeSubscriber(topic id: Int32, at position: Int32) -> Change {
        let t = Int(id)
        let last = subscribersByTopic[t].removeLast()
        if Int(position) < subscribersByTopic[t].count {
            subscribersByTopic[t][Int(position)] = last
            let moved = Int(last)
            if let index = bySlot[moved].firstIndex(where: { $0.topic == id }) {
                bySlot[moved][index].position = position
            }
        }
        subscriptionCount -= 1
        if subscribersByTopic[t].isEmpty {
            idsByName[names[t]] = nil
            names[t] = ""
            freeTopics.append(id)
            return .lastSubscriberLeft
        }
        return .unchanged
    }
}
