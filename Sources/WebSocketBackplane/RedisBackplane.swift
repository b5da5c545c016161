import CHiredis
import Logging
import UVKit
import WebSocketCore
import WebSocketServer
#if canImport(Glibc)
import Glibc
#endif

/// Why a backplane could not start.
public enum RedisBackplaneError: Error, CustomStringConvertible, Equatable {
    /// Nothing answered at the URL's address, or the name did not resolve.
    case unreachable(url: String, reason: String)
    /// Redis refused the URL's password (or user).
    case authenticationFailed(url: String, reason: String)
    /// Redis refused the URL's database index.
    case databaseRefused(url: String, reason: String)

    /// One line naming the cause, fit to print as it is.
    public var description: String {
        switch self {
        case .unreachable(let url, let reason): return "cannot reach Redis at \(url): \(reason)"
        case .authenticationFailed(let url, let reason): return "Redis at \(url) refused the password: \(reason)"
        case .databaseRefused(let url, let reason): return "Redis at \(url) refused the database: \(reason)"
        }
    }
}

/// Topics across servers on Redis pub/sub: a group's publications go to
/// Redis once, tagged with this server's identity and a per-topic sequence;
/// the server subscribes in Redis only to topics it has subscribers for, and
/// drops its own publications when they come back. While Redis is away,
/// local delivery goes on (it never waits for Redis); what is published
/// meanwhile is counted as not carried across, with a warning, and the
/// connections come back with backoff and subscribe again. A receiver
/// counts the messages it missed from each publisher by the sequence gaps.
///
/// Two connections on the group's loop 0: one publishes, one subscribes
/// (a subscribed Redis connection takes no other command). `sharded` uses
/// Redis 7's `SPUBLISH`/`SSUBSCRIBE`, the form Redis Cluster spreads over
/// its shards.
///
/// Made and `start`ed by its group; every other call is on loop 0 but
/// `metrics`, which any thread may read (under a lock): hence the unchecked
/// `Sendable`.
public final class RedisBackplane: TopicBackplane, @unchecked Sendable {
    /// What the backplane has done, for logs and dashboards.
    public struct Metrics: Sendable, Equatable {
        /// Publications written to Redis.
        public var published = 0
        /// Publications made while Redis was away, or written to a connection
        /// that failed before Redis confirmed them: not carried across.
        public var notCarried = 0
        /// Publications from other servers delivered here.
        public var received = 0
        /// This server's own publications handed back by Redis and dropped.
        public var ownDropped = 0
        /// Messages from other servers that never arrived, by sequence gaps.
        public var missed = 0
        /// Times a connection to Redis was made again after a loss.
        public var reconnects = 0
        /// Both connections are up.
        public var connected = false
    }

    /// Where Redis is, with the password and database it was given.
    public let url: RedisURL
    /// Redis 7 sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`) instead of `PUBLISH`/`SUBSCRIBE`.
    public let sharded: Bool
    /// This server's identity in every message it publishes: its own come back and are dropped.
    public let node = NodeIdentity.random()
    private var logger: Logger
    private let channelPrefix: String
    private let figures = Lock(Metrics())

    // Loop 0 only, from `start` on.
    private var loop: EventLoop?
    private var deliver: ((String, UnsafeRawBufferPointer, MessageType) -> Void)?
    private var publisher: Link?
    private var subscriber: Link?
    private var topics: Set<String> = []
    private var sequences: [String: UInt64] = [:]
    private var gaps = GapTracker()
    private var stopping = false
    /// Publications written and not yet confirmed by Redis's reply.
    private var unconfirmed = 0
    /// The head of each publication, built here rather than allocated.
    private let head = UnsafeMutableRawBufferPointer.allocate(byteCount: BackplaneMessage.headLength, alignment: 8)
    private var outageStarted: UInt64?
    private var notCarriedInOutage = 0

    /// Checks the URL at once (blocking, as start-up is): connects, logs in
    /// and selects the database, so that a wrong password or an unreachable
    /// Redis is an error now rather than a silent retry loop later.
    public init(url: RedisURL, sharded: Bool = false, logger: Logger = Logger(label: "UVWebSocket.redis")) throws(RedisBackplaneError) {
        self.url = url
        self.sharded = sharded
        self.logger = logger
        channelPrefix = "uvws:\(url.database):"
        try Self.check(url)
        self.logger[metadataKey: "node"] = "\(node)"
    }

    deinit { head.deallocate() }

    /// A snapshot of the figures; any thread.
    public var metrics: Metrics { figures.withLock { $0 } }

    private static func check(_ url: RedisURL) throws(RedisBackplaneError) {
        let shown = "\(url)"
        guard let context = redisConnectWithTimeout(url.host, Int32(url.port), timeval(tv_sec: 3, tv_usec: 0)) else {
            throw .unreachable(url: shown, reason: "out of memory")
        }
        defer { redisFree(context) }
        if context.pointee.err != 0 {
            throw .unreachable(url: shown, reason: withUnsafeBytes(of: context.pointee.errstr) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) })
        }
        if let password = url.password {
            let arguments = url.user.map { ["AUTH", $0, password] } ?? ["AUTH", password]
            if let error = command(context, arguments) { throw .authenticationFailed(url: shown, reason: error) }
        }
        if url.database != 0, let error = command(context, ["SELECT", String(url.database)]) {
            throw .databaseRefused(url: shown, reason: error)
        }
        if let error = command(context, ["PING"]) { throw .unreachable(url: shown, reason: error) }
    }

    /// One blocking command; the error's text, or nil.
    private static func command(_ context: UnsafeMutablePointer<redisContext>, _ arguments: [String]) -> String? {
        // The arguments' bytes in one block that outlives the call, and a
        // pointer and a length for each.
        let bytes = arguments.map { Array($0.utf8) }
        let block = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, bytes.reduce(0) { $0 + $1.count }))
        let argv = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: bytes.count)
        let lengths = UnsafeMutablePointer<Int>.allocate(capacity: bytes.count)
        defer {
            block.deallocate()
            argv.deallocate()
            lengths.deallocate()
        }
        var offset = 0
        for (index, argument) in bytes.enumerated() {
            argument.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(block + offset).copyMemory(from: base, byteCount: raw.count) }
            }
            argv[index] = UnsafePointer(block + offset)
            lengths[index] = argument.count
            offset += argument.count
        }
        guard let reply = redisCommandArgv(context, Int32(bytes.count), argv, lengths) else {
            return "no reply (connection lost)"
        }
        defer { freeReplyObject(reply) }
        let parsed = RedisReply(reply.assumingMemoryBound(to: redisReply.self))
        return parsed.isError ? parsed.text : nil
    }

    // MARK: TopicBackplane

    /// Connects its two links to Redis on `loop` (the group's first); `deliver`
    /// hands other servers' publications to the local subscribers.
    public func start(on loop: EventLoop, deliver: @escaping (String, UnsafeRawBufferPointer, MessageType) -> Void) {
        self.loop = loop
        self.deliver = deliver
        publisher = Link(role: .publisher, owner: self)
        subscriber = Link(role: .subscriber, owner: self)
        publisher?.connect()
        subscriber?.connect()
    }

    /// Sends a local publication to Redis, numbered per topic; counted as not
    /// carried while Redis is away.
    public func publish(_ payload: UnsafeRawBufferPointer, type: MessageType, topic: String) {
        // Numbered even when it cannot be carried: the other servers then see
        // the gap and count what they missed.
        let sequence = sequences[topic, default: 0] &+ 1
        sequences[topic] = sequence
        guard let publisher, publisher.isReady else {
            notCarried(1)
            return
        }
        BackplaneMessage.writeHead(node: node, sequence: sequence, type: type, into: head)
        var channel = channelPrefix + topic
        channel.withUTF8 { channelBytes in
            publisher.connection?.sendParts(command: sharded ? "SPUBLISH" : "PUBLISH", key: UnsafeRawBufferPointer(channelBytes),
                                            head: UnsafeRawBufferPointer(head), payload: payload)
        }
        unconfirmed += 1
        figures.withLock { $0.published += 1 }
    }

    /// The first local subscriber of `topic` arrived: subscribe in Redis (again after every reconnect).
    public func subscribe(_ topic: String) {
        topics.insert(topic)
        if let subscriber, subscriber.isReady { subscriber.connection?.send([sharded ? "SSUBSCRIBE" : "SUBSCRIBE", channelPrefix + topic]) }
    }

    /// The last local subscriber of `topic` left: unsubscribe in Redis.
    public func unsubscribe(_ topic: String) {
        topics.remove(topic)
        gaps.forget(topic: topic)
        if let subscriber, subscriber.isReady { subscriber.connection?.send([sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", channelPrefix + topic]) }
    }

    /// Closes both links; no reconnect follows.
    public func stop() {
        stopping = true
        publisher?.shut()
        subscriber?.shut()
        publisher = nil
        subscriber = nil
        let m = metrics
        logger.info("redis backplane stopped", metadata: [
            "published": "\(m.published)", "notCarried": "\(m.notCarried)", "received": "\(m.received)",
            "ownDropped": "\(m.ownDropped)", "missed": "\(m.missed)", "reconnects": "\(m.reconnects)"])
    }

    // MARK: Events from the links

    private func notCarried(_ count: Int) {
        guard count > 0 else { return }
        figures.withLock { $0.notCarried += count }
        if notCarriedInOutage == 0 {
            logger.warning("Redis is away: publications are delivered here only, not carried to other servers, until it is back")
        }
        notCarriedInOutage += count
    }

    fileprivate func linkReady(_ link: Link) {
        if link.role == .subscriber {
            for topic in topics { link.connection?.send([sharded ? "SSUBSCRIBE" : "SUBSCRIBE", channelPrefix + topic]) }
        }
        let up = publisher?.isReady == true && subscriber?.isReady == true
        figures.withLock { $0.connected = up }
        if up, let started = outageStarted, let loop {
            logger.warning("Redis is back", metadata: ["afterMilliseconds": "\(loop.now &- started)",
                                                       "notCarried": "\(notCarriedInOutage)"])
            outageStarted = nil
            notCarriedInOutage = 0
        } else if up {
            // Publications made before the first connection (at start-up)
            // were counted; the next outage gets its own warning.
            logger.info("Redis backplane connected", metadata: ["url": "\(url)", "sharded": "\(sharded)",
                                                                "notCarriedBefore": "\(notCarriedInOutage)"])
            notCarriedInOutage = 0
        }
    }

    fileprivate func linkLost(_ link: Link, reason: String) {
        figures.withLock { $0.connected = false }
        if link.role == .publisher {
            // Written but not confirmed: Redis may not have taken them.
            notCarried(unconfirmed)
            unconfirmed = 0
        }
        if outageStarted == nil, let loop {
            outageStarted = loop.now
            logger.warning("lost the connection to Redis; reconnecting", metadata: ["url": "\(url)", "reason": "\(reason)",
                                                                                    "role": "\(link.role)"])
        }
    }

    fileprivate func linkReconnected() {
        figures.withLock { $0.reconnects += 1 }
    }

    fileprivate func publisherReply(_ reply: RedisReply) {
        if unconfirmed > 0 { unconfirmed -= 1 }
        if reply.isError { logger.error("Redis refused a publication", metadata: ["error": "\(reply.text)"]) }
    }

    fileprivate func subscriberReply(_ reply: RedisReply) {
        if reply.isError {
            logger.error("Redis refused a subscription", metadata: ["error": "\(reply.text)"])
            return
        }
        guard reply.count == 3, let kind = reply[0]?.text, kind == "message" || kind == "smessage",
              let channel = reply[1], let body = reply[2] else { return }
        let name = channel.text
        guard name.hasPrefix(channelPrefix) else { return }
        let topic = String(name.dropFirst(channelPrefix.count))
        guard let message = BackplaneMessage.decode(body.bytes) else {
            logger.debug("a message on the channel is not a backplane message", metadata: ["channel": "\(name)"])
            return
        }
        if message.node == node {
            figures.withLock { $0.ownDropped += 1 }
            return
        }
        let missed = gaps.record(node: message.node, topic: topic, sequence: message.sequence)
        if missed > 0 {
            logger.warning("messages from another server never arrived", metadata: [
                "from": "\(message.node)", "topic": "\(topic)", "missed": "\(missed)"])
        }
        figures.withLock {
            $0.received += 1
            $0.missed += Int(missed)
        }
        deliver?(topic, message.payload, message.type)
    }

    // MARK: A connection that comes back

    /// One of the two connections, with its log-in steps and its backoff.
    fileprivate final class Link: RedisConnectionDelegate {
        enum Role: CustomStringConvertible {
            case publisher, subscriber
            var description: String { self == .publisher ? "publisher" : "subscriber" }
        }

        let role: Role
        unowned let owner: RedisBackplane
        private(set) var connection: RedisConnection?
        /// Log-in replies still awaited (AUTH, SELECT) before it is ready.
        private var stepsLeft = 0
        private(set) var isReady = false
        private var attempts = 0
        private var retry: Timer?
        private var everReady = false

        init(role: Role, owner: RedisBackplane) {
            self.role = role
            self.owner = owner
        }

        func connect() {
            guard let loop = owner.loop, !owner.stopping else { return }
            let url = owner.url
            if SocketAddress.isNumeric(url.host) || url.host == "localhost" {
                guard let address = try? SocketAddress(host: url.host, port: url.port) else {
                    return lost(reason: "bad address \(url.host)")
                }
                open(address, on: loop)
                return
            }
            AddressResolver.resolve(url.host, port: url.port, on: loop) { [weak self] result in
                guard let self, !owner.stopping else { return }
                switch result {
                case .success(let addresses) where !addresses.isEmpty: open(addresses[0], on: loop)
                case .success: lost(reason: "\(url.host) has no address")
                case .failure(let error): lost(reason: "cannot resolve \(url.host): \(error)")
                }
            }
        }

        private func open(_ address: SocketAddress, on loop: EventLoop) {
            let connection = RedisConnection(loop: loop)
            connection.delegate = self
            self.connection = connection
            do { try connection.connect(to: address) } catch { connection.fail("cannot connect: \(error)") }
        }

        func redisConnected(_ connection: RedisConnection) {
            let url = owner.url
            stepsLeft = 0
            if let password = url.password {
                connection.send(url.user.map { ["AUTH", $0, password] } ?? ["AUTH", password])
                stepsLeft += 1
            }
            if url.database != 0 {
                connection.send(["SELECT", String(url.database)])
                stepsLeft += 1
            }
            if stepsLeft == 0 { becomeReady() }
        }

        private func becomeReady() {
            isReady = true
            attempts = 0
            if everReady { owner.linkReconnected() }
            everReady = true
            owner.linkReady(self)
        }

        func redisReply(_ connection: RedisConnection, _ reply: RedisReply) {
            if stepsLeft > 0 {
                stepsLeft -= 1
                if reply.isError {
                    // The password changed since start-up: said loudly, tried again later.
                    owner.logger.error("Redis refused the log-in", metadata: ["error": "\(reply.text)", "role": "\(role)"])
                    connection.fail("log-in refused")
                    return
                }
                if stepsLeft == 0 { becomeReady() }
                return
            }
            if role == .publisher { owner.publisherReply(reply) } else { owner.subscriberReply(reply) }
        }

        func redisLost(_ connection: RedisConnection, reason: String) {
            lost(reason: reason)
        }

        /// The connection (or the attempt to make one) failed: try again
        /// after a backoff.
        private func lost(reason: String) {
            isReady = false
            self.connection = nil
            if owner.stopping { return }
            owner.linkLost(self, reason: reason)
            guard let loop = owner.loop else { return }
            // 100 ms, doubling, at most 5 s; the next try comes even if the
            // loop has nothing else to do, but does not keep it running.
            let delay = UInt64(100) << UInt64(min(attempts, 6))
            attempts += 1
            let timer = retry ?? Timer(loop: loop)
            retry = timer
            timer.start(timeout: min(delay, 5000)) { [weak self] in self?.connect() }
        }

        func shut() {
            isReady = false
            connection?.shut()
            connection = nil
            retry?.close()
            retry = nil
        }
    }
}

