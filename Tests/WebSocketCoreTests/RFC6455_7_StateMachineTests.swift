import Testing
import WebSocketCore

/// What a state machine made of some bytes, with views copied out.
enum Action: Equatable {
    case message(MessageType, [UInt8], isFinal: Bool)
    case sendPong([UInt8])
    case pong([UInt8])
    case closed(UInt16, String, sendClose: Bool)
}

/// A machine in `role` plus its ring: feed it the peer's frames, read its actions.
final class Harness {
    var machine: WebSocketStateMachine
    var ring = ByteRing(capacity: 4096)
    let role: Role
    /// Whether the last pong fed answered a ping of ours.
    var lastPongMeasured = false

    init(_ role: Role, maxMessageSize: Int = 1 << 20, keepAlive: KeepAlivePolicy = KeepAlivePolicy(interval: 0, timeout: 0),
         closeTimeout: UInt64 = 5000, messageExtension: (any MessageExtension)? = nil) {
        self.role = role
        machine = WebSocketStateMachine(role: role, maxMessageSize: maxMessageSize, keepAlive: keepAlive,
                                        closeTimeout: closeTimeout, messageExtension: messageExtension)
    }

    deinit { ring.deallocate() }

    // Mutating calls wrapped, so #expect can take them (it evaluates its
    // operands as immutable values).
    func startClosing(now: UInt64) -> Bool { machine.startClosing(now: now) == .sendCloseFrame }
    func connectionLost(now: UInt64) -> Bool { machine.connectionLost(now: now) == .abnormalClosure }
    func dataFrame(type: MessageType, isFinal: Bool) -> Opcode? { machine.dataFrame(type: type, isFinal: isFinal) }
    func deadlineReached(now: UInt64, readingPaused: Bool = false) -> WebSocketStateMachine.DeadlineAction {
        machine.deadlineReached(now: now, readingPaused: readingPaused)
    }

    /// A frame as the peer sends it: masked toward a server, plain toward a client (§5.1).
    func peer(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0) -> [UInt8] {
        frame(opcode, payload, fin: fin, mask: role == .server ? [0x37, 0xfa, 0x21, 0x3d] : nil, rsv: rsv)
    }

    func feed(_ bytes: [UInt8], now: UInt64 = 0) -> [Action] {
        bytes.withUnsafeBytes { _ = ring.write($0) }
        var actions: [Action] = []
        while true {
            switch machine.receive(&ring, now: now) {
            case .needMoreData: return actions
            case .message(let b, let t, let f): actions.append(.message(t, Array(b), isFinal: f))
            case .sendPong(let b): actions.append(.sendPong(Array(b)))
            case .pong(let b, let measured):
                actions.append(.pong(Array(b)))
                lastPongMeasured = measured
            case .closed(let c, let r, let s): actions.append(.closed(c.rawValue, String(decoding: r, as: UTF8.self), sendClose: s))
            }
        }
    }
}

@Suite("RFC 6455 §5.5 and §7: the protocol state machine, in both roles, without I/O")
struct StateMachineTests {
    static let roles: [Role] = [.server, .client]

    @Test("§5.5.2: a ping is answered with a pong carrying its payload", arguments: roles)
    func pingPong(role: Role) {
        let h = Harness(role)
        #expect(h.feed(h.peer(0x9, [1, 2, 3])) == [.sendPong([1, 2, 3])])
        #expect(h.feed(h.peer(0xA, [9])) == [.pong([9])])
        #expect(h.machine.isOpen)
    }

    @Test("§4: CONNECTING sends no frame, closes nothing and reports no loss; its end is closed, never open", arguments: roles)
    func connecting(role: Role) {
        var machine = WebSocketStateMachine(role: role, maxMessageSize: 1 << 20, now: 5, connecting: true)
        #expect(machine.state == .connecting && machine.isConnecting)
        #expect(!machine.isOpen && !machine.readsFrames)
        let opcode = machine.dataFrame(type: .text, isFinal: true)
        let close = machine.startClosing(now: 6)
        let ping = machine.pingSent(now: 6)
        #expect(opcode == nil && close == .none && !ping)
        #expect(machine.nextDeadline(now: 6) == nil, "the runtime times the opening handshake")
        let lost = machine.connectionLost(now: 7)
        #expect(lost == nil, "no WebSocket yet: nothing for the application")
        #expect(machine.state == .closed && !machine.isConnecting)
        var answered = WebSocketStateMachine(role: role, maxMessageSize: 1 << 20, now: 5, connecting: true)
        answered.closeWithoutFrames(now: 8)
        #expect(answered.state == .closed)
        #expect(answered.nextDeadline(now: 8) == 8 + answered.closeTimeout, "the wait for the peer's FIN is timed")
    }

    @Test("§7.1.5: a loss while frames flow is 1006 to the application, told once", arguments: roles)
    func lossIsReported(role: Role) {
        var machine = WebSocketStateMachine(role: role, maxMessageSize: 1 << 20)
        let first = machine.connectionLost(now: 1)
        let second = machine.connectionLost(now: 2)
        #expect(first == .abnormalClosure)
        #expect(second == nil)
    }

    @Test("§7.1.2: the peer's close while open is answered with its code and reason, once", arguments: roles)
    func peerCloses(role: Role) {
        let h = Harness(role)
        #expect(h.feed(h.peer(0x8, closeBody(1000, "bye")), now: 10) == [.closed(1000, "bye", sendClose: true)])
        #expect(h.machine.state == .closed)
        // Nothing after a close: no more events, no sends, no second report.
        #expect(h.feed(h.peer(0x1, Array("late".utf8))) == [])
        #expect(h.dataFrame(type: .text, isFinal: true) == nil)
        #expect(!h.connectionLost(now: 20))
    }

    @Test("§7.1.2: our close, then the peer's reply ends it without a second close frame", arguments: roles)
    func weClose(role: Role) {
        let h = Harness(role)
        #expect(h.startClosing(now: 0))
        #expect(!h.startClosing(now: 1), "a second close sends nothing")
        #expect(h.machine.state == .closeSent)
        // Data still arrives while we wait; a ping is not answered after our close (§5.5.1).
        #expect(h.feed(h.peer(0x2, [7])) == [.message(.binary, [7], isFinal: true)])
        #expect(h.feed(h.peer(0x9, [1])) == [])
        #expect(h.dataFrame(type: .binary, isFinal: true) == nil)
        #expect(!h.machine.canSendControl)
        #expect(h.feed(h.peer(0x8, closeBody(1000))) == [.closed(1000, "", sendClose: false)])
    }

    @Test("§5.4: a close inside a fragmented message ends it at once", arguments: roles)
    func closeDuringFragments(role: Role) {
        let h = Harness(role)
        let bytes = h.peer(0x1, Array("hel".utf8), fin: false) + h.peer(0x8, closeBody(1001, "away"))
        #expect(h.feed(bytes) == [.message(.text, Array("hel".utf8), isFinal: false), .closed(1001, "away", sendClose: true)])
    }

    @Test("§5.5.1: a close with no body is reported as 1005 and answered with an empty close", arguments: roles)
    func emptyClose(role: Role) {
        let h = Harness(role)
        #expect(h.feed(h.peer(0x8, [])) == [.closed(1005, "", sendClose: true)])
        // 1005 never goes on the wire: the reply body is empty.
        var body = [UInt8](repeating: 0, count: 125)
        let n = body.withUnsafeMutableBytes { ClosePayload.write(code: .noStatusReceived, reason: UnsafeRawBufferPointer(start: nil, count: 0), into: $0.baseAddress!) }
        #expect(n == 0)
    }

    @Test("§7.1.7: each broken rule fails with its code, through the one failure path", arguments: roles)
    func failures(role: Role) {
        func failing(_ build: (Harness) -> [UInt8], maxMessageSize: Int = 1 << 20) -> [Action] {
            let h = Harness(role, maxMessageSize: maxMessageSize)
            let actions = h.feed(build(h))
            #expect(h.machine.state == .closed)
            return actions
        }
        // §5.1: the wrong masking for the role.
        #expect(failing { h in frame(0x1, [0x41], mask: h.role == .server ? nil : [1, 2, 3, 4]) } == [.closed(1002, "", sendClose: true)])
        // §5.4: a continuation with nothing to continue.
        #expect(failing { $0.peer(0x0, [1]) } == [.closed(1002, "", sendClose: true)])
        // §5.2: a reserved opcode.
        #expect(failing { $0.peer(0x3, []) } == [.closed(1002, "", sendClose: true)])
        // §8.1: text that is not UTF-8.
        #expect(failing { $0.peer(0x1, [0xC3, 0x28]) } == [.closed(1007, "", sendClose: true)])
        // §7.4.1: a message over the limit, before its payload.
        #expect(failing({ $0.peer(0x2, [UInt8](repeating: 1, count: 20)) }, maxMessageSize: 10) == [.closed(1009, "", sendClose: true)])
        // §7.4.2: a close code that may not be sent.
        #expect(failing { $0.peer(0x8, closeBody(1005)) } == [.closed(1002, "", sendClose: true)])
        // §5.2: RSV bits with no extension negotiated.
        #expect(failing { $0.peer(0x1, [0x41], rsv: 0x4) } == [.closed(1002, "", sendClose: true)])
    }

    @Test("a failure after our close sends no second close frame; an abort before any close reports 1006", arguments: roles)
    func failAfterClose(role: Role) {
        let h = Harness(role)
        #expect(h.startClosing(now: 0))
        guard case .closed(let code, _, let send) = h.machine.fail(.protocolError, now: 1) else {
            Issue.record("fail did not close")
            return
        }
        #expect(code == .protocolError && !send)
        let fresh = Harness(role)
        #expect(fresh.connectionLost(now: 0), "the application hears 1006")
        #expect(!fresh.connectionLost(now: 1), "once")
    }

    @Test("§5.4: fragmented sends are one opcode and then continuations", arguments: roles)
    func fragmentedSends(role: Role) {
        let h = Harness(role)
        #expect(h.dataFrame(type: .text, isFinal: false) == .text)
        #expect(!h.machine.canSendWholeMessage, "no other message between fragments")
        #expect(h.dataFrame(type: .text, isFinal: false) == .continuation)
        #expect(h.dataFrame(type: .text, isFinal: true) == .continuation)
        #expect(h.machine.canSendWholeMessage)
        #expect(h.dataFrame(type: .binary, isFinal: true) == .binary)
    }

    @Test("keep-alive: a ping after the interval, the peer dead after the timeout, alive if it answers", arguments: roles)
    func keepAlive(role: Role) {
        let h = Harness(role, keepAlive: KeepAlivePolicy(interval: 1000, timeout: 500))
        #expect(h.machine.nextDeadline(now: 0) == 1000)
        #expect(h.deadlineReached(now: 999) == .none)
        #expect(h.deadlineReached(now: 1000) == .sendPing)
        #expect(h.machine.nextDeadline(now: 1000) == 1500)
        #expect(h.deadlineReached(now: 1400) == .none, "one ping at a time")
        #expect(h.deadlineReached(now: 1500) == .peerIsDead)

        let answered = Harness(role, keepAlive: KeepAlivePolicy(interval: 1000, timeout: 500))
        #expect(answered.deadlineReached(now: 1000) == .sendPing)
        answered.machine.lastRead = 1120
        #expect(answered.feed(answered.peer(0xA, []), now: 1120) == [.pong([])])
        #expect(answered.machine.roundTripTime == 120)
        #expect(answered.deadlineReached(now: 1500) == .none)
        #expect(answered.deadlineReached(now: 2000) == .sendPing, "the next ping an interval after the last")
    }

    @Test("an application's ping is timed too: its pong sets the round-trip time", arguments: roles)
    func applicationPing(role: Role) {
        let h = Harness(role)
        #expect(h.machine.roundTripTime == nil)
        let first = h.machine.pingSent(now: 100)
        let second = h.machine.pingSent(now: 110)
        #expect(first && second, "a second ping may go; the first one's time counts")
        #expect(h.feed(h.peer(0xA, [1]), now: 130) == [.pong([1])])
        #expect(h.machine.roundTripTime == 30)
        #expect(h.lastPongMeasured)
        // §5.5.3: an unsolicited pong answers nothing and measures nothing.
        #expect(h.feed(h.peer(0xA, [2]), now: 150) == [.pong([2])])
        #expect(!h.lastPongMeasured)
        #expect(h.machine.roundTripTime == 30)
        // Once closing, no ping may go (§5.5.1: nothing follows our close).
        #expect(h.startClosing(now: 200))
        let afterClose = h.machine.pingSent(now: 210)
        #expect(!afterClose)
    }

    @Test("keep-alive under backpressure: the peer taking our bytes is the proof of life", arguments: roles)
    func keepAliveWhilePaused(role: Role) {
        let h = Harness(role, keepAlive: KeepAlivePolicy(interval: 1000, timeout: 500))
        #expect(h.deadlineReached(now: 1000) == .sendPing)
        h.machine.lastWrite = 1200
        #expect(h.deadlineReached(now: 1500, readingPaused: true) == .none)
        let reading = Harness(role, keepAlive: KeepAlivePolicy(interval: 1000, timeout: 500))
        #expect(reading.deadlineReached(now: 1000) == .sendPing)
        reading.machine.lastWrite = 1200
        #expect(reading.deadlineReached(now: 1500, readingPaused: false) == .peerIsDead,
                "while reading, only what we read counts")
    }

    @Test("the close timeout: the closing handshake or the drain ends at closeTimeout", arguments: roles)
    func closeTimeout(role: Role) {
        let h = Harness(role, closeTimeout: 5000)
        #expect(h.startClosing(now: 100))
        #expect(h.machine.nextDeadline(now: 100) == 5100)
        #expect(h.deadlineReached(now: 5099) == .none)
        #expect(h.deadlineReached(now: 5100) == .abort)
        #expect(h.connectionLost(now: 5100), "a closing handshake cut short is 1006")
    }
}
