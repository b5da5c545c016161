// An application imports WebSocketServer alone: the connection, handler and
// options types (the runtime shared with the client) come with it.
@_exported import WebSocketRuntime
