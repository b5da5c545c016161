import CLibCrypto

/// The `Sec-WebSocket-Key` / `Sec-WebSocket-Accept` pair (RFC 6455 §4.2.2,
/// §11.3.1), with SHA-1 and base64 from OpenSSL's libcrypto.
public enum AcceptKey {
    /// The GUID every server appends to the client's key (§1.3).
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// base64(SHA-1(key + GUID)).
    public static func accept(forKey key: String) -> String {
        var input = Array((key + guid).utf8)
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        _ = SHA1(&input, input.count, &digest)
        return base64(digest)
    }

    /// A key is valid when it is base64 for exactly 16 bytes (§4.1 step 7): 24
    /// characters ending in "==".
    public static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        var out = [UInt8](repeating: 0, count: 24)
        // EVP_DecodeBlock counts the padding as zero bytes: 16 + 2.
        return EVP_DecodeBlock(&out, bytes, 24) == 18
    }

    /// A fresh client key: 16 random bytes, base64.
    public static func makeKey() -> String {
        var raw = [UInt8](repeating: 0, count: 16)
        precondition(RAND_bytes(&raw, 16) == 1, "OpenSSL RAND_bytes failed")
        return base64(raw)
    }

    static func base64(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: (bytes.count + 2) / 3 * 4 + 1)
        let n = EVP_EncodeBlock(&out, bytes, Int32(bytes.count))
        return String(decoding: out[0..<Int(n)], as: UTF8.self)
    }
}
