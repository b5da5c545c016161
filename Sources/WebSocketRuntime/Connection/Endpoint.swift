import Logging
import UVKit
import WebSocketCompression
import WebSocketCore

/// What the connections of one server or one client share: the settings, the
/// counters and the loop's context. Not generic, so the connection's code
/// reads them directly; `Endpoint<Handler>` adds the handler and the owner's
/// hooks. The server and the client each make one; every connection holds it.
package class EndpointCore {
    package let context: LoopContext
    package let settings: ConnectionSettings
    /// The extensions this end negotiates, in order of preference: made once
    /// per endpoint, so permessage-deflate's pool is the loop's.
    package let negotiators: [any ExtensionNegotiator]
    /// permessage-deflate's negotiator, when compression is on (for broadcasts).
    package let deflate: PermessageDeflate?
    /// Counters, bumped on the loop thread.
    @exclusivity(unchecked) package var metrics = WebSocketMetrics()
    /// Round-trip times for the metrics reporter, when there is one.
    package var roundTrips = RoundTripSamples()
    /// Where connection events go at debug level: opened, closed with its
    /// code, keep-alive timeouts, backpressure pauses. Never per message.
    package var logger: Logger {
        didSet { logsDebug = logger.logLevel <= .debug }
    }
    /// Whether debug events pass the logger's level, cached so that an event
    /// costs a load and a branch when they do not.
    package private(set) var logsDebug: Bool
    /// Which loop of a server group this endpoint's connections live on (0
    /// alone), for the identities other threads address them by.
    package var loopIndex: UInt16 = 0
    /// The server or client this endpoint belongs to (for `connection.server`);
    /// nil once it has gone, while its last connections close.
    package weak var owner: AnyObject?
    /// HTTP keep-alive: how long a kept-alive connection may wait for its
    /// next request, and how long a response may go without a byte taken by
    /// the peer (ms; 0: no limit). Set by a server that serves files.
    package var httpIdleTimeout: UInt64 = 5_000
    package var httpSendTimeout: UInt64 = 60_000

    init(context: LoopContext, settings: ConnectionSettings, logger: Logger,
         compression: CompressionOptions?, extensions: [any ExtensionNegotiator]) {
        deflate = compression.map { PermessageDeflate(options: $0) }
        negotiators = (deflate.map { [$0] } ?? []) + extensions
        self.logger = logger
        logsDebug = logger.logLevel <= .debug
        self.context = context
        self.settings = settings
    }
}

/// An endpoint of a `Handler`'s connections: the handler, and what to do at
/// the moments only the owner knows about (an HTTP head arrived; a
/// connection is gone).
package final class Endpoint<Handler: WebSocketHandler>: EndpointCore {
    package let handler: Handler
    /// The HTTP phase ended (a request head for the server, the response head
    /// for the client, or why none came); once per connection.
    package var httpPhaseEnded: (WebSocketConnection<Handler>, HTTPPhaseOutcome) -> Void = { connection, _ in
        connection.abortHTTP()
    }
    /// The TCP connect of a client connection ended (nil: connected).
    package var connectFinished: (WebSocketConnection<Handler>, UVError?) -> Void = { _, _ in }
    /// A response streamed by `sendHTTP` can go on: the queue that
    /// `notifyWhenHTTPQueueDrains` waited for is empty.
    package var httpDrained: (WebSocketConnection<Handler>) -> Void = { _ in }
    /// The connection's handle has closed: forget it.
    package var connectionClosed: (WebSocketConnection<Handler>) -> Void = { _ in }

    /// - Parameters:
    ///   - compression: permessage-deflate's options, when this end offers or accepts it.
    ///   - extensions: the other extensions, after permessage-deflate in order of preference.
    package init(handler: Handler, context: LoopContext, settings: ConnectionSettings, logger: Logger,
                 compression: CompressionOptions?, extensions: [any ExtensionNegotiator]) {
        self.handler = handler
        super.init(context: context, settings: settings, logger: logger, compression: compression, extensions: extensions)
    }
}
