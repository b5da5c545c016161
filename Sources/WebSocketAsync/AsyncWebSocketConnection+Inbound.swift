import WebSocketCore
import WebSocketRuntime

extension AsyncWebSocketConnection {
    /// The inbound messages of one connection (`messages`).
    public struct Messages: AsyncSequence, Sendable {
        /// Each element is one whole message.
        public typealias Element = WebSocketMessage
        let connection: AsyncWebSocketConnection

        /// An iterator over the messages; it takes them from the loop in batches.
        public func makeAsyncIterator() -> Iterator { Iterator(connection: connection) }

        /// Hands out a batch taken in one step, then waits for the next.
        public struct Iterator: AsyncIteratorProtocol {
            let connection: AsyncWebSocketConnection
            /// Taken from the loop at once; handed out without the lock.
            var batch: [WebSocketMessage] = []
            var index = 0

            /// The next message; nil once the connection has closed and
            /// every message before the close was handed out.
            public mutating func next() async throws -> WebSocketMessage? {
                if index < batch.count {
                    defer { index &+= 1 }
                    return batch[index]
                }
                // Moved out, not copied: a second reference to the buffer
                // would make the loop's next append copy it (copy-on-write).
                var spare: [WebSocketMessage] = []
                swap(&spare, &batch)
                spare.removeAll(keepingCapacity: true)
                index = 0
                batch = try await connection.takeBatch(reusing: spare)
                if batch.isEmpty { return nil }
                index = 1
                return batch[0]
            }
        }
    }

    /// Everything buffered, swapped for the consumer's emptied list (which
    /// keeps its capacity for the loop's next messages); empty at the end.
    func takeBatch(reusing spare: consuming [WebSocketMessage]) async throws -> [WebSocketMessage] {
        while true {
            try Task.checkCancellation()
            enum Step { case taken(resume: Bool), ended, wait }
            let step: Step = state.withLock { state in
                if !state.inbox.isEmpty {
                    swap(&state.inbox, &spare)
                    state.inboxBytes = 0
                    let resume = state.readingPaused && !state.ended
                    state.readingPaused = false
                    return .taken(resume: resume)
                }
                return state.ended ? .ended : .wait
            }
            switch step {
            case .taken(let resume):
                if resume { resumeReadingOnLoop() }
                return spare
            case .ended:
                return []
            case .wait:
                try await waitForMessages()
            }
        }
    }

    /// Suspends until the loop delivers a message or the end, or the task
    /// is cancelled. The cancellation handler and the waiter's install both
    /// run under the lock, so a cancellation is never missed: either the
    /// handler finds the waiter, or the install sees the flag.
    private func waitForMessages() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                enum Install { case installed, ready, busy }
                let outcome: Install = state.withLock { state in
                    if state.reader != nil { return .busy }
                    if !state.inbox.isEmpty || state.ended || Task.isCancelled { return .ready }
                    state.reader = continuation
                    return .installed
                }
                switch outcome {
                case .installed: break
                case .ready: continuation.resume()
                case .busy: continuation.resume(throwing: AsyncWebSocketError.concurrentIteration)
                }
            }
        } onCancel: {
            state.withLock { state in
                defer { state.reader = nil }
                return state.reader
            }?.resume(throwing: CancellationError())
        }
    }

    /// The consumer caught up: the loop reads from the peer again.
    private func resumeReadingOnLoop() {
        let bound = LoopBound(self)
        loop.execute { bound.value.connection?.resumeReading() }
    }

    // MARK: The loop's side

    /// A whole message arrived (loop thread): buffered, the consumer woken
    /// if it waits, and reading paused once the buffer is past its limit.
    func deliver(_ message: WebSocketMessage) {
        let size = message.byteCount
        let limit = inboundLimit
        let (reader, pause): (CheckedContinuation<Void, Error>?, Bool) = state.withLock { state in
            state.inbox.append(message)
            state.inboxBytes &+= size
            let reader = state.reader
            state.reader = nil
            if state.inboxBytes > limit && !state.readingPaused {
                state.readingPaused = true
                return (reader, true)
            }
            return (reader, false)
        }
        // Paused before the consumer's resume can run: that one is posted to
        // this loop and runs after this callback.
        if pause { connection?.pauseReading() }
        reader?.resume()
    }
}
