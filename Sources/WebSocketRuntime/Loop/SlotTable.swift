/// A table whose entries keep their index for life: an insert takes a freed
/// index or appends, a removal frees the index for the next insert. The wheel
/// of deadlines and the server's connection table index by these slots.
package struct SlotTable<Element> {
    package private(set) var entries: [Element?] = []
    private var freeSlots: [Int32] = []

    package init() {}

    /// Stores `element` and returns its slot.
    package mutating func insert(_ element: Element) -> Int32 {
        if let free = freeSlots.popLast() {
            entries[Int(free)] = element
            return free
        }
        entries.append(element)
        return Int32(entries.count - 1)
    }

    package mutating func remove(at slot: Int32) {
        entries[Int(slot)] = nil
        freeSlots.append(slot)
    }

    package subscript(slot: Int32) -> Element? { entries[Int(slot)] }

    /// Slots handed out so far, freed or not (the wheel reserves this many).
    package var capacity: Int { entries.count }
    /// Entries held now.
    package var count: Int { entries.count - freeSlots.count }
}
