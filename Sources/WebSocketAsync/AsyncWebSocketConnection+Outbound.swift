import UVKit
import WebSocketCore
import WebSocketRuntime

extension AsyncWebSocketConnection {
    /// Sends a whole message. Returns once it is handed to the connection's
    /// loop, in order after every message this task sent before; suspends
    /// first while the bytes not yet taken by the kernel are past
    /// `outboundLimit`.
    ///
    /// Throws `AsyncWebSocketError.closed` once a close has begun, and
    /// `CancellationError` if the task is cancelled while it waits: the
    /// message is then not sent at all, never in part, and the connection
    /// stays usable.
    public func send(_ message: WebSocketMessage) async throws {
        while true {
            try Task.checkCancellation()
            enum Step { case sent(post: Bool), closed(CloseCode?), wait }
            let size = message.byteCount
            let limit = outboundLimit
            let step: Step = state.withLock { state in
                if state.closing || state.ended { return .closed(state.closeCode) }
                // One message past the limit is taken (one larger than the
                // limit must be sendable); then senders wait.
                if state.outstanding > limit { return .wait }
                state.outgoing.append(.message(message))
                state.outgoingBytes &+= size
                if state.flushPosted { return .sent(post: false) }
                state.flushPosted = true
                return .sent(post: true)
            }
            switch step {
            case .sent(let post):
                if post { try postFlush() }
                return
            case .closed(let code):
                throw AsyncWebSocketError.closed(code: code)
            case .wait:
                try await waitForRoom()
            }
        }
    }

    /// Sends a text message (`send(_:)`).
    public func send(text: String) async throws { try await send(.text(text)) }

    /// Sends a binary message (`send(_:)`).
    public func send(binary: [UInt8]) async throws { try await send(.binary(binary)) }

    /// Starts the closing handshake after every message already sent, and
    /// returns once the connection has ended (the peer's close frame came,
    /// or the close timeout passed). Returns at once if it has ended already.
    /// Codes a close frame may not carry go out as 1011, as
    /// `WebSocketConnection.close` does.
    ///
    /// Throws `AsyncWebSocketError.loopClosed` if the loop took no more work
    /// (its server shut down, which closed the connection with it).
    public func close(code: CloseCode = .normalClosure, reason: String = "") async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            enum Step { case ended, waiting(post: Bool) }
            let step: Step = state.withLock { state in
                if state.ended { return .ended }
                state.closers.append(continuation)
                guard !state.closing else { return .waiting(post: false) }
                state.closing = true
                state.outgoing.append(.closeRequest(code, reason))
                if state.flushPosted { return .waiting(post: false) }
                state.flushPosted = true
                return .waiting(post: true)
            }
            switch step {
            case .ended: continuation.resume()
            // A loop that takes no more work ended its connections with it:
            // `loopEnded` resumes this waiter.
            case .waiting(let post): if post { try? postFlush() }
            }
        }
    }

    /// Posts one flush of `outgoing` to the loop.
    private func postFlush() throws {
        let bound = LoopBound(self)
        if !loop.execute({ bound.value.flush() }) {
            loopEnded()
            throw AsyncWebSocketError.loopClosed
        }
    }

    /// Suspends until the loop makes room, the connection ends, or the task
    /// is cancelled (then `CancellationError`, nothing sent).
    private func waitForRoom() async throws {
        let id: UInt64 = state.withLock { state in
            defer { state.nextWriterID &+= 1 }
            return state.nextWriterID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                let ready: Bool = state.withLock { state in
                    if state.outstanding <= outboundLimit || state.closing || state.ended || Task.isCancelled {
                        return true
                    }
                    state.writers.append((id, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            state.withLock { state -> CheckedContinuation<Void, Error>? in
                guard let index = state.writers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.writers.remove(at: index).continuation
            }?.resume(throwing: CancellationError())
        }
    }

    // MARK: The loop's side

    /// Writes what senders appended, in order, in one corked batch (loop
    /// thread), then wakes the senders if the queue left is under the limit.
    func flush() {
        // Moved out of `spareOutgoing`, not copied: a buffer referenced twice
        // would be copied (copy-on-write) at the senders' next append.
        var batch: [Outgoing] = []
        swap(&batch, &spareOutgoing)
        state.withLock { state in
            swap(&state.outgoing, &batch)
            state.outgoingBytes = 0
            state.flushPosted = false
        }
        if let connection {
            connection.sendBatch {
                for item in batch {
                    switch item {
                    case .message(.text(var text)):
                        text.withUTF8 { _ = connection.send(UnsafeRawBufferPointer($0), type: .text) }
                    case .message(.binary(let bytes)):
                        bytes.withUnsafeBytes { _ = connection.send($0, type: .binary) }
                    case .closeRequest(let code, let reason):
                        connection.close(code: code, reason: reason)
                    }
                }
            }
        }
        batch.removeAll(keepingCapacity: true)
        spareOutgoing = batch
        queueChanged()
    }

    /// The kernel took bytes (a flush, or the queue drained): senders past
    /// the limit go on if the queue left allows, or wait for its drain.
    func queueChanged() {
        guard let connection else { return }
        let queued = connection.bufferedAmount
        let limit = outboundLimit
        let writers: [(id: UInt64, continuation: CheckedContinuation<Void, Error>)] = state.withLock { state in
            state.queuedAtLoop = queued
            if state.writers.isEmpty || state.outstanding > limit { return [] }
            defer { state.writers.removeAll() }
            return state.writers
        }
        // Still past the limit: the drain (`didDrain`) calls this again.
        if queued > limit { _ = connection.notifyWhenDrained() }
        for writer in writers { writer.continuation.resume() }
    }

    /// The connection ended (loop thread): the consumer sees the end after
    /// what is buffered, waiting senders and closers go on, the handler's
    /// task is cancelled, and the cycle with the connection is broken.
    func ended(code: CloseCode, reason: String) {
        let (reader, writers, closers, task) = state.withLock { state in
            state.ended = true
            state.closeCode = code
            state.closeReason = reason
            state.outgoing.removeAll()
            state.outgoingBytes = 0
            defer {
                state.reader = nil
                state.writers.removeAll()
                state.closers.removeAll()
            }
            return (state.reader, state.writers, state.closers, state.task)
        }
        connection = nil
        // A client is let go in a later turn, not inside its own connection's
        // close callback.
        if let owner {
            self.owner = nil
            let bound = LoopBound(owner)
            loop.execute { withExtendedLifetime(bound) {} }
        }
        reader?.resume()
        for writer in writers { writer.continuation.resume(throwing: AsyncWebSocketError.closed(code: code)) }
        for closer in closers { closer.resume() }
        task?.cancel()
    }

    /// The loop takes no more work: nothing will reach the connection, so
    /// everyone waiting goes on as at an end (any thread).
    func loopEnded() {
        let (reader, writers, closers) = state.withLock { state in
            state.closing = true
            defer {
                state.reader = nil
                state.writers.removeAll()
                state.closers.removeAll()
            }
            return (state.reader, state.writers, state.closers)
        }
        reader?.resume(throwing: AsyncWebSocketError.loopClosed)
        for writer in writers { writer.continuation.resume(throwing: AsyncWebSocketError.loopClosed) }
        for closer in closers { closer.resume(throwing: AsyncWebSocketError.loopClosed) }
    }
}
