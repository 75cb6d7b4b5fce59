import COpenSSL

/// AES-256-GCM (authenticated encryption) and HKDF-SHA256 (RFC 5869), for sealed cookies.
public enum AEAD {
    public static let keyBytes = 32
    public static let nonceBytes = 12
    public static let tagBytes = 16

    /// Returns ciphertext followed by the 16-byte tag.
    public static func seal(_ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) throws(CryptoError) -> [UInt8] {
        precondition(key.count == keyBytes && nonce.count == nonceBytes)
        guard let context = EVP_CIPHER_CTX_new() else { throw .signFailed("out of memory") }
        defer { EVP_CIPHER_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: plaintext.count + tagBytes)
        var length: Int32 = 0
        var total = 0
        let ok = key.withUnsafeBufferPointer { k in nonce.withUnsafeBufferPointer { n in
            EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, k.baseAddress, n.baseAddress)
        } } == 1
            && (aad.isEmpty || aad.withUnsafeBufferPointer { EVP_EncryptUpdate(context, nil, &length, $0.baseAddress, Int32($0.count)) } == 1)
            && out.withUnsafeMutableBufferPointer { o in plaintext.withUnsafeBufferPointer { p in
                EVP_EncryptUpdate(context, o.baseAddress, &length, p.baseAddress, Int32(p.count))
            } } == 1
        guard ok else { ERR_clear_error(); throw .signFailed("AES-GCM encryption failed") }
        total = Int(length)
        let finished = out.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(context, $0.baseAddress! + total, &length) } == 1
        guard finished else { ERR_clear_error(); throw .signFailed("AES-GCM encryption failed") }
        total += Int(length)
        let tagged = out.withUnsafeMutableBufferPointer {
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(tagBytes), $0.baseAddress! + total)
        } == 1
        guard tagged else { ERR_clear_error(); throw .signFailed("AES-GCM tag failed") }
        return Array(out[0..<(total + tagBytes)])
    }

    /// The plaintext, or nil when anything (key, nonce, aad, ciphertext, tag) does not match.
    public static func open(_ sealed: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard key.count == keyBytes, nonce.count == nonceBytes, sealed.count >= tagBytes else { return nil }
        let cipherLength = sealed.count - tagBytes
        return Symmetric.decrypt(EVP_aes_256_gcm(), key: key, iv: nonce, input: Array(sealed[0..<cipherLength]),
                                 tag: Array(sealed[cipherLength...]), aad: aad)
    }

    public static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = key.withUnsafeBufferPointer { k in data.withUnsafeBufferPointer { d in
            HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress, d.count, &out, &length)
        } }
        return Array(out[0..<Int(length)])
    }

    /// HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` to `length` bytes.
    public static func hkdfSHA256(secret: [UInt8], salt: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        precondition(length <= 255 * 32)
        let prk = hmacSHA256(key: salt.isEmpty ? [UInt8](repeating: 0, count: 32) : salt, secret)
        var output: [UInt8] = []
        var block: [UInt8] = []
        var counter: UInt8 = 1
        while output.count < length {
            block = hmacSHA256(key: prk, block + info + [counter])
            output += block
            counter += 1
        }
        return Array(output[0..<length])
    }
}
