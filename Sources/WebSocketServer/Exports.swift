// The protocol vocabulary a handler needs, so that applications import
// WebSocketServer alone.
@_exported import enum WebSocketCore.MessageType
@_exported import struct WebSocketCore.CloseCode
@_exported import struct WebSocketCore.HTTPHeadLimits
