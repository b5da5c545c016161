// An application imports WebSocketClient alone: the connection, handler and
// options types (the runtime shared with the server) come with it.
@_exported import WebSocketRuntime
