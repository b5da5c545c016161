/// A close status code (RFC 6455 §7.4). A struct, not an enum, because
/// applications may use any code from 3000 to 4999.
public struct CloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let normalClosure = CloseCode(1000)
    public static let goingAway = CloseCode(1001)
    public static let protocolError = CloseCode(1002)
    public static let unsupportedData = CloseCode(1003)
    /// Never sent on the wire: stands for "the close frame carried no code" (§7.1.5).
    public static let noStatusReceived = CloseCode(1005)
    /// Never sent on the wire: stands for "the connection ended without a close frame".
    public static let abnormalClosure = CloseCode(1006)
    public static let invalidPayloadData = CloseCode(1007)
    public static let policyViolation = CloseCode(1008)
    public static let messageTooBig = CloseCode(1009)
    public static let mandatoryExtension = CloseCode(1010)
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

    public var description: String { String(rawValue) }
}
