import UVKit
import WebSocketCore

/// A frame staged in the loop's arena this turn.
package struct StagedFrame {
    let offset: Int32
    let length: Int32
}

/// Publications staged for the end of the loop turn: a topic's message is
/// copied once into the loop's arena, and each subscriber gets a reference to
/// it; after the poll phase every subscriber's references leave in one
/// `writev` (µWebSockets drains its publications per socket at the end of the
/// loop iteration the same way, copying into each socket's buffer instead).
/// Many publications in one turn (a publisher's burst, a busy room) then cost
/// each subscriber one system call, not one each.
///
/// Order: a connection with staged frames writes them before anything else it
/// writes (`AnyWebSocketConnection.writeToSocket` writes them first), and staging for a
/// connection that holds the cork writes the cork first, so a connection's own
/// sends and the publications it gets keep their order. TLS connections and
/// connections with a queue are not staged (their bytes go through the queue).
///
/// Loop thread only. Its buffers are manual, grow to the traffic and are
/// never shrunk, so a steady fan-out allocates nothing and pays no array
/// uniqueness or bounds checks per subscriber.
struct PublicationStaging {
    /// One subscriber's reference to a staged frame; `next` links the
    /// subscriber's references in order (-1 ends the list).
    struct Entry {
        var offset: Int32
        var length: Int32
        var next: Int32
    }

    private(set) var arena: UnsafeMutableRawPointer
    private var arenaCapacity: Int
    private var arenaCount = 0
    private var entries: UnsafeMutablePointer<Entry>
    private var entryCount = 0
    private var entryCapacity: Int
    /// By the connection's wheel slot: its first and last entry (-1: none).
    private var heads: UnsafeMutablePointer<(Int32, Int32)>
    private var headCapacity: Int
    /// Connections with staged entries, by wheel slot, in the order they got
    /// their first one this turn.
    private var slots: UnsafeMutablePointer<Int32>
    private(set) var slotCount = 0
    private var slotCapacity: Int
    /// Where one subscriber's small staged frames are joined for one write.
    let gather: UnsafeMutableRawBufferPointer
    /// One subscriber's write vector, filled by `take`.
    private(set) var pieces: UnsafeMutablePointer<IOPiece>
    private(set) var pieceCount = 0
    private var pieceCapacity: Int

    /// Frames up to this size are staged; larger ones go by reference at once.
    static let largestStaged = 16 * 1024
    /// Past this much staged in one turn, publications are written at once
    /// (the arena would otherwise grow with a publisher that never pauses).
    static let arenaLimit = 4 << 20

    init() {
        arenaCapacity = 64 * 1024
        arena = .allocate(byteCount: arenaCapacity, alignment: 16)
        entryCapacity = 1024
        entries = .allocate(capacity: entryCapacity)
        headCapacity = 1024
        heads = .allocate(capacity: headCapacity)
        heads.initialize(repeating: (-1, -1), count: headCapacity)
        slotCapacity = 1024
        slots = .allocate(capacity: slotCapacity)
        pieceCapacity = 64
        pieces = .allocate(capacity: pieceCapacity)
        gather = .allocate(byteCount: 64 * 1024, alignment: 16)
    }

    func deallocate() {
        arena.deallocate()
        entries.deallocate()
        heads.deallocate()
        slots.deallocate()
        pieces.deallocate()
        gather.deallocate()
    }

    var isEmpty: Bool { slotCount == 0 }

    func slot(at index: Int) -> Int32 { slots[index] }

    /// Copies a frame (its header and payload) into the arena; returns its
    /// offset, or nil when the turn's arena is full.
    mutating func stage(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> Int32? {
        let length = header.count + payload.count
        guard arenaCount + length <= Self.arenaLimit else { return nil }
        if arenaCount + length > arenaCapacity {
            var capacity = arenaCapacity * 2
            while capacity < arenaCount + length { capacity *= 2 }
            let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            grown.copyMemory(from: arena, byteCount: arenaCount)
            arena.deallocate()
            arena = grown
            arenaCapacity = capacity
        }
        let offset = arenaCount
        if header.count > 0 { (arena + offset).copyMemory(from: header.baseAddress!, byteCount: header.count) }
        if payload.count > 0 { (arena + offset + header.count).copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
        arenaCount += length
        return Int32(offset)
    }

    /// Adds a reference to the frame at `offset` for the connection in `slot`.
    @inline(__always)
    mutating func add(slot: Int32, offset: Int32, length: Int32) {
        let s = Int(slot)
        if s >= headCapacity { growHeads(to: s + 1) }
        // A frame that follows the connection's last one in the arena (a burst
        // to one topic) lengthens that reference: one piece, nothing to join.
        let last = heads[s].1
        if last >= 0, entries[Int(last)].offset &+ entries[Int(last)].length == offset {
            entries[Int(last)].length &+= length
            return
        }
        if entryCount == entryCapacity { entries = Self.grow(entries, count: entryCount, capacity: &entryCapacity) }
        let index = Int32(truncatingIfNeeded: entryCount)
        entries[entryCount] = Entry(offset: offset, length: length, next: -1)
        entryCount &+= 1
        if heads[s].0 < 0 {
            heads[s] = (index, index)
            if slotCount == slotCapacity { slots = Self.grow(slots, count: slotCount, capacity: &slotCapacity) }
            slots[slotCount] = slot
            slotCount &+= 1
        } else {
            entries[Int(heads[s].1)].next = index
            heads[s].1 = index
        }
    }

    /// The frames staged for the connection in `slot`, in order, into
    /// `pieces` (valid until the next `stage` or `take`); the slot's list is
    /// emptied.
    mutating func take(slot: Int32) {
        pieceCount = 0
        let s = Int(slot)
        guard s < headCapacity else { return }
        var index = heads[s].0
        while index >= 0 {
            let entry = entries[Int(index)]
            if pieceCount == pieceCapacity { pieces = Self.grow(pieces, count: pieceCount, capacity: &pieceCapacity) }
            pieces[pieceCount] = IOPiece(base: arena + Int(entry.offset), length: Int(entry.length))
            pieceCount &+= 1
            index = entry.next
        }
        heads[s] = (-1, -1)
    }

    /// The turn is over: everything was written or dropped.
    mutating func reset() {
        for i in 0..<slotCount { heads[Int(slots[i])] = (-1, -1) }
        slotCount = 0
        entryCount = 0
        arenaCount = 0
    }

    private mutating func growHeads(to needed: Int) {
        var capacity = headCapacity * 2
        while capacity < needed { capacity *= 2 }
        let grown = UnsafeMutablePointer<(Int32, Int32)>.allocate(capacity: capacity)
        grown.moveInitialize(from: heads, count: headCapacity)
        (grown + headCapacity).initialize(repeating: (-1, -1), count: capacity - headCapacity)
        heads.deallocate()
        heads = grown
        headCapacity = capacity
    }

    private static func grow<T>(_ buffer: UnsafeMutablePointer<T>, count: Int, capacity: inout Int) -> UnsafeMutablePointer<T> {
        capacity *= 2
        let grown = UnsafeMutablePointer<T>.allocate(capacity: capacity)
        grown.moveInitialize(from: buffer, count: count)
        buffer.deallocate()
        return grown
    }
}
