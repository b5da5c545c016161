import Testing
import WebSocketCore

@Suite("TimingWheel: coarse deadlines for many connections")
struct TimingWheelTests {
    @Test("a deadline fires on the first sweep at or after it, once")
    func firesOnce() {
        var wheel = TimingWheel(granularity: 10, bucketCount: 64, now: 0)
        var expired: [Int32] = []
        wheel.schedule(3, at: 125)
        wheel.sweep(now: 120, into: &expired)
        #expect(expired.isEmpty)
        wheel.sweep(now: 130, into: &expired)
        #expect(expired == [3])
        wheel.sweep(now: 500, into: &expired)
        #expect(expired == [3])
        #expect(wheel.count == 0)
    }

    @Test("deadlines past one turn of the wheel wait for their turn")
    func laterTurns() {
        var wheel = TimingWheel(granularity: 10, bucketCount: 8, now: 0)  // one turn = 80
        var expired: [Int32] = []
        wheel.schedule(1, at: 250)
        for now in stride(from: 10, through: 240, by: 10) {
            wheel.sweep(now: UInt64(now), into: &expired)
            #expect(expired.isEmpty, "fired early at \(now)")
        }
        wheel.sweep(now: 250, into: &expired)
        #expect(expired == [1])
    }

    @Test("rescheduling moves a slot; cancelling removes it")
    func rescheduleAndCancel() {
        var wheel = TimingWheel(granularity: 5, now: 0)
        var expired: [Int32] = []
        wheel.schedule(1, at: 20)
        wheel.schedule(2, at: 20)
        wheel.schedule(1, at: 100)
        wheel.cancel(2)
        wheel.sweep(now: 50, into: &expired)
        #expect(expired.isEmpty)
        #expect(wheel.deadline(of: 1) == 100)
        wheel.sweep(now: 100, into: &expired)
        #expect(expired == [1])
    }

    @Test("many slots: each fires once, none early")
    func manySlots() {
        var rng = SplitMix64(seed: 99)
        var wheel = TimingWheel(granularity: 10, bucketCount: 256, now: 0)
        var deadlines: [UInt64] = []
        for slot in 0..<10000 {
            let d = UInt64.random(in: 0...20000, using: &rng)
            deadlines.append(d)
            wheel.schedule(Int32(slot), at: d)
        }
        var fired = [Bool](repeating: false, count: 10000)
        var expired: [Int32] = []
        var now: UInt64 = 0
        while now <= 20010 {
            now += UInt64.random(in: 1...40, using: &rng)
            expired.removeAll(keepingCapacity: true)
            wheel.sweep(now: now, into: &expired)
            for s in expired {
                #expect(!fired[Int(s)])
                #expect(deadlines[Int(s)] <= now)
                #expect(now - deadlines[Int(s)] <= 40 + 10)
                fired[Int(s)] = true
            }
        }
        #expect(fired.allSatisfy { $0 })
    }
}

@Suite("KeepAlivePolicy: ping and dead-peer decisions")
struct KeepAlivePolicyTests {
    let policy = KeepAlivePolicy(interval: 1000, timeout: 500)

    @Test("a quiet connection gets a ping after the interval, not before")
    func pingAfterInterval() {
        #expect(policy.evaluate(now: 999, lastRead: 0, lastWrite: 0, pingSentAt: nil) == (.nothing, 1000))
        let (d, next) = policy.evaluate(now: 1000, lastRead: 0, lastWrite: 0, pingSentAt: nil)
        #expect(d == .sendPing && next == 1500)
    }

    @Test("quiet in either direction counts: a proxy times out on the server's silence too")
    func eitherDirection() {
        #expect(policy.evaluate(now: 1200, lastRead: 1100, lastWrite: 100, pingSentAt: nil).decision == .sendPing)
        #expect(policy.evaluate(now: 1200, lastRead: 100, lastWrite: 1100, pingSentAt: nil).decision == .sendPing)
        #expect(policy.evaluate(now: 1200, lastRead: 1100, lastWrite: 1100, pingSentAt: nil) == (.nothing, 2100))
    }

    @Test("no answer within the timeout means the peer is dead; any read in time clears it")
    func deadPeer() {
        #expect(policy.evaluate(now: 1400, lastRead: 0, lastWrite: 1000, pingSentAt: 1000) == (.nothing, 1500))
        #expect(policy.evaluate(now: 1500, lastRead: 0, lastWrite: 1000, pingSentAt: 1000).decision == .peerIsDead)
        #expect(policy.evaluate(now: 1500, lastRead: 1200, lastWrite: 1000, pingSentAt: 1000).decision == .nothing)
    }

    @Test("interval 0 turns pings off; timeout 0 never declares a peer dead")
    func off() {
        let off = KeepAlivePolicy(interval: 0, timeout: 0)
        #expect(off.evaluate(now: 1_000_000, lastRead: 0, lastWrite: 0, pingSentAt: nil) == (.nothing, nil))
        let noTimeout = KeepAlivePolicy(interval: 1000, timeout: 0)
        #expect(noTimeout.evaluate(now: 1_000_000, lastRead: 0, lastWrite: 900_000, pingSentAt: 0).decision == .sendPing)
    }
}
