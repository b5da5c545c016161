// The protocol vocabulary a handler needs, so that applications import
// WebSocketServer or WebSocketClient alone.
@_exported import enum WebSocketCore.MessageType
@_exported import struct WebSocketCore.CloseCode
@_exported import struct WebSocketCore.HTTPHeadLimits
@_exported import protocol WebSocketCore.ExtensionNegotiator
@_exported import protocol WebSocketCore.MessageExtension
@_exported import struct WebSocketCore.ExtensionOffer
@_exported import enum WebSocketCore.ExtensionStep
@_exported import struct WebSocketCompression.CompressionOptions
@_exported import class UVKit.EventLoop
@_exported import struct UVKit.LoopBound
@_exported import struct TLSKit.TLSServerConfiguration
@_exported import struct TLSKit.TLSClientConfiguration
@_exported import struct TLSKit.TLSCertificateFiles
@_exported import enum TLSKit.TLSTrust
@_exported import enum TLSKit.TLSVersion
@_exported import enum TLSKit.TLSError
@_exported import enum TLSKit.TLSFailure
