import Foundation
import Synchronization
import Testing
import UVKit

/// A record for the tests: which thread sent it and its sequence number.
struct TestRecord: BitwiseCopyable {
    var sender: Int32
    var sequence: Int32
}

/// What the loop received, in order.
final class Received: @unchecked Sendable {
    var records: [(TestRecord, [UInt8])] = []
    var batches = 0
}

@Suite("UVKit: the loop inbox and loop threads", .serialized)
struct LoopInboxTests {
    @Test("records from 4 threads arrive whole, each thread's in order, and the inbox refuses once closed")
    func manyProducers() throws {
        let loop = try EventLoop()
        let received = Received()
        let inbox = LoopInbox<TestRecord>(loop: loop, limit: 1 << 20, keepsLoopAlive: true,
                                          receive: { record, payload in received.records.append((record, Array(payload))) },
                                          batchEnded: { received.batches += 1 })
        let producers = 4, perProducer = 2000
        let threads = try (0..<producers).map { sender in
            try LoopThread(name: "producer-\(sender)") {
                for n in 0..<perProducer {
                    var payload = [UInt8](repeating: UInt8(truncatingIfNeeded: n), count: n % 300)
                    while !payload.withUnsafeBytes({ inbox.post(TestRecord(sender: Int32(sender), sequence: Int32(n)), payload: $0) }) {
                        usleep(100)  // past the limit: the loop catches up
                    }
                    payload.removeAll()
                }
            }
        }
        // The loop runs until every record is in, then closes the inbox.
        let stopper = Timer(loop: loop)
        stopper.start(timeout: 1, repeat: 1) {
            if received.records.count == producers * perProducer {
                inbox.close()
                stopper.close()
            }
        }
        loop.run()
        for thread in threads { thread.join() }
        try loop.close()
        #expect(received.records.count == producers * perProducer)
        var next = Array(repeating: Int32(0), count: producers)
        for (record, payload) in received.records {
            #expect(record.sequence == next[Int(record.sender)])
            next[Int(record.sender)] = record.sequence + 1
            #expect(payload.count == Int(record.sequence) % 300)
            #expect(payload.allSatisfy { $0 == UInt8(truncatingIfNeeded: record.sequence) })
        }
        // Records were read in batches, not one wake-up each.
        #expect(received.batches < producers * perProducer)
        #expect(!inbox.post(TestRecord(sender: 0, sequence: 0)))
    }

    @Test("past its limit the inbox refuses a record and posts nothing of it; what is pending at close is delivered")
    func limitAndClose() throws {
        let loop = try EventLoop()
        let received = Received()
        let inbox = LoopInbox<TestRecord>(loop: loop, limit: 256, keepsLoopAlive: false,
                                          receive: { record, payload in received.records.append((record, Array(payload))) })
        let big = [UInt8](repeating: 1, count: 200)
        #expect(big.withUnsafeBytes { inbox.post(TestRecord(sender: 0, sequence: 0), payload: $0) })
        #expect(!big.withUnsafeBytes { inbox.post(TestRecord(sender: 0, sequence: 1), payload: $0) })
        #expect(inbox.post(TestRecord(sender: 0, sequence: 2)))
        // A control record is taken past the limit.
        #expect(big.withUnsafeBytes { inbox.post(TestRecord(sender: 0, sequence: 3), payload: $0, control: true) })
        inbox.close()
        try loop.close()
        #expect(received.records.map(\.0.sequence) == [0, 2, 3])
        #expect(received.records.first?.1 == big)
        #expect(!inbox.post(TestRecord(sender: 0, sequence: 4), control: true))
    }
}
