import Synchronization

/// The open connections of every loop of a group, so that `maxConnections`
/// bounds the server, not each loop. Touched once per connection (accept and
/// close), never per message.
final class ConnectionCounter: Sendable {
    private let count = Atomic<Int>(0)

    func add(_ delta: Int) { count.add(delta, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
