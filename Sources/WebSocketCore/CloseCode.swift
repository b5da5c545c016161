/// A close status code (RFC 6455 §7.4). A struct, not an enum, because
/// applications may use any code from 3000 to 4999.
public struct CloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The code as sent in a close frame.
    public var rawValue: UInt16
    /// Any code, valid or not (`isValidOnWire` tells).
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Any code, valid or not (`isValidOnWire` tells).
    @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    /// 1000: the purpose of the connection was fulfilled.
    public static let normalClosure = CloseCode(1000)
    /// 1001: the endpoint goes away (a server shutting down, a page left).
    public static let goingAway = CloseCode(1001)
    /// 1002: the peer broke the protocol.
    public static let protocolError = CloseCode(1002)
    /// 1003: a type of data the endpoint cannot take.
    public static let unsupportedData = CloseCode(1003)
    /// Never sent on the wire: stands for "the close frame carried no code" (§7.1.5).
    public static let noStatusReceived = CloseCode(1005)
    /// Never sent on the wire: stands for "the connection ended without a close frame".
    public static let abnormalClosure = CloseCode(1006)
    /// 1007: a message's data does not match its type (invalid UTF-8 in text).
    public static let invalidPayloadData = CloseCode(1007)
    /// 1008: a message broke the endpoint's policy.
    public static let policyViolation = CloseCode(1008)
    /// 1009: a message too big to process.
    public static let messageTooBig = CloseCode(1009)
    /// 1010: the client needed an extension the server did not agree to.
    public static let mandatoryExtension = CloseCode(1010)
    /// 1011: the server met a condition that kept it from fulfilling the request.
    public static let internalError = CloseCode(1011)

    /// Whether a peer may send this code in a close frame. 1004–1006 and 1015 are
    /// reserved or local-only, codes below 1000 are unused, and 1016–2999 are
    /// reserved for future RFCs (§7.4.2); 1012–1014 are IANA-registered.
    @inlinable public var isValidOnWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    /// The number, as "1000".
    public var description: String { String(rawValue) }
}
