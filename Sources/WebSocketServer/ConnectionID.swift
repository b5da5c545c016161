import WebSocketRuntime

/// A server connection's identity, for reaching it from any thread
/// (`WebSocketServerGroup.send(_:type:to:)`, `close(_:code:reason:)`): its
/// loop, its slot in that loop's table and a serial that tells it apart from
/// the slot's earlier and later holders, so an identity kept past its
/// connection's end reaches nobody rather than a stranger.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    /// Which loop of the group the connection lives on.
    public let loop: Int
    let slot: Int32
    let serial: UInt32

    /// "loop:slot#serial", as the logs print it.
    public var description: String { "\(loop):\(slot)#\(serial)" }
}

extension WebSocketConnection {
    /// This connection's identity for other threads. Loop thread only (read it
    /// in `didOpen` and hand it over); meaningful for a server's connections.
    public var id: ConnectionID {
        let slot = tableSlot
        let serial = slot >= 0 ? server?.serials[Int(slot)] ?? 0 : 0
        return ConnectionID(loop: Int(loopIndex), slot: slot, serial: serial)
    }
}
