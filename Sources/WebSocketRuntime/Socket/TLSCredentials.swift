import TLSKit
import UVKit

/// A server's TLS context, replaceable while it runs: `reload()` reads the
/// certificate and key files again and new connections use the new context;
/// connections already open keep theirs. Safe from any thread (a signal
/// handler's loop, a management thread): the loop takes the lock once per
/// accepted connection, never per message.
package final class TLSCredentials: Sendable {
    package let configuration: TLSServerConfiguration
    private let context: Lock<TLSContext>

    package init(_ configuration: TLSServerConfiguration) throws(TLSError) {
        self.configuration = configuration
        context = Lock(try TLSContext.server(configuration))
    }

    package var current: TLSContext { context.withLock { $0 } }

    /// Reads the files again. On failure the old context stays in use.
    package func reload() throws(TLSError) {
        let fresh = try TLSContext.server(configuration)
        context.withLock { $0 = fresh }
    }
}
