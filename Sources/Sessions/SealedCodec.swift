import CryptoCore
import Foundation

/// Seals a Codable value into a cookie-safe string and opens it again: AES-256-GCM with a
/// key derived per secret by HKDF-SHA256, the purpose (session, login state) bound into
/// both the key and the associated data, so one kind of cookie never opens as another.
///
/// Format `v1.<base64url(keyID[4] || nonce[12] || ciphertext || tag[16])>`. The first
/// secret seals; every secret opens (rotation: add a new secret first, remove the old one
/// after the longest TTL). Anything tampered, truncated, sealed with an unknown secret or
/// for another purpose opens as nil: no session, never an error page.
public struct SealedCodec<Value: Codable>: Sendable {
    struct Key: Sendable {
        let id: [UInt8]
        let bytes: [UInt8]
    }

    private let keys: [Key]
    private let aad: [UInt8]
    private let random: @Sendable (Int) throws -> [UInt8]
    static var prefix: String { "v1." }

    /// - Parameters:
    ///   - secrets: from `session.secrets`, at least 32 bytes each.
    ///   - purpose: distinguishes cookie kinds (`session`, `login-state`).
    ///   - random: nonce source (injected; production uses OpenSSL's CSPRNG).
    public init(secrets: [[UInt8]], purpose: String,
                random: @escaping @Sendable (Int) throws -> [UInt8] = { try SecureRandom().bytes($0) }) {
        precondition(!secrets.isEmpty, "at least one secret")
        let info = Array("ssogate \(purpose) v1".utf8)
        keys = secrets.map { secret in
            let material = AEAD.hkdfSHA256(secret: secret, salt: Array("ssogate-sealed-cookie".utf8), info: info, length: 36)
            return Key(id: Array(material[32..<36]), bytes: Array(material[0..<32]))
        }
        aad = info
        self.random = random
    }

    public func seal(_ value: Value) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let plaintext = Array(try encoder.encode(value))
        let key = keys[0]
        let nonce = try random(AEAD.nonceBytes)
        let sealed = try AEAD.seal(plaintext, key: key.bytes, nonce: nonce, aad: aad)
        return Self.prefix + Base64.encode(key.id + nonce + sealed, alphabet: .url)
    }

    public func open(_ text: Substring) -> Value? {
        guard let raw = Self.unsealedBytes(text), raw.count >= 4 + AEAD.nonceBytes + AEAD.tagBytes else { return nil }
        let id = Array(raw[0..<4])
        let nonce = Array(raw[4..<(4 + AEAD.nonceBytes)])
        let sealed = Array(raw[(4 + AEAD.nonceBytes)...])
        // The key id picks the secret; a collision (1 in 2^32) just costs a failed open.
        for key in keys where key.id == id {
            if let plaintext = AEAD.open(sealed, key: key.bytes, nonce: nonce, aad: aad) {
                return try? JSONDecoder().decode(Value.self, from: Data(plaintext))
            }
        }
        return nil
    }

    public func open(_ text: String) -> Value? { open(Substring(text)) }

    /// The bytes after `v1.`: unpadded base64url and nothing else (no `=`, no spaces), read
    /// from the cookie's UTF-8 without a copy into Foundation.
    static func unsealedBytes(_ text: Substring) -> [UInt8]? {
        guard text.hasPrefix(prefix) else { return nil }
        let body = text.utf8.dropFirst(prefix.utf8.count)
        guard !body.contains(UInt8(ascii: "=")) else { return nil }
        if let decoded = body.withContiguousStorageIfAvailable({ Base64.decode($0, alphabet: .url) }) { return decoded }
        return Base64.decode(Array(body), alphabet: .url)
    }
}
