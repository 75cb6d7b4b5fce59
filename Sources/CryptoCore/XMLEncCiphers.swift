import COpenSSL

/// The decryption primitives of XML Encryption that SAML IdPs use for EncryptedAssertion:
/// RSA-OAEP key transport and AES-CBC or AES-GCM content encryption.
///
/// Every failure is the same `nil`, with the OpenSSL error queue cleared: which step
/// failed (unwrap, padding, tag) must not be observable, or the caller becomes a
/// decryption oracle.
public enum XMLEncCiphers {
    public enum Digest: Sendable, Equatable {
        case sha1, sha256, sha384, sha512

        var md: OpaquePointer? {
            switch self {
            case .sha1: EVP_sha1()
            case .sha256: EVP_sha256()
            case .sha384: EVP_sha384()
            case .sha512: EVP_sha512()
            }
        }
    }

    /// RSA-OAEP (PKCS#1 v2) decryption of a wrapped content key.
    public static func unwrapOAEP(_ wrapped: [UInt8], key: PrivateKey, digest: Digest, mgf1: Digest) -> [UInt8]? {
        guard key.isRSA, let context = EVP_PKEY_CTX_new(key.handle, nil) else { return nil }
        defer { EVP_PKEY_CTX_free(context); ERR_clear_error() }
        guard EVP_PKEY_decrypt_init(context) == 1,
              EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_OAEP_PADDING) == 1,
              EVP_PKEY_CTX_set_rsa_oaep_md(context, digest.md) == 1,
              EVP_PKEY_CTX_set_rsa_mgf1_md(context, mgf1.md) == 1 else { return nil }
        var length = 0
        guard wrapped.withUnsafeBufferPointer({ EVP_PKEY_decrypt(context, nil, &length, $0.baseAddress, $0.count) }) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        let ok = out.withUnsafeMutableBufferPointer { o in wrapped.withUnsafeBufferPointer { w in
            EVP_PKEY_decrypt(context, o.baseAddress, &length, w.baseAddress, w.count)
        } } == 1
        return ok ? Array(out[0..<length]) : nil
    }

    /// AES-CBC as XML Encryption frames it: a 16-byte IV, then the ciphertext, whose last
    /// plaintext byte gives the padding length (the padding bytes themselves are arbitrary,
    /// not PKCS#7). The key is 16 or 32 bytes.
    public static func decryptAESCBC(_ data: [UInt8], key: [UInt8]) -> [UInt8]? {
        let cipher: OpaquePointer?
        switch key.count {
        case 16: cipher = EVP_aes_128_cbc()
        case 32: cipher = EVP_aes_256_cbc()
        default: return nil
        }
        guard data.count >= 32, data.count % 16 == 0 else { return nil }
        let iv = Array(data[0..<16])
        guard let plain = Symmetric.decrypt(cipher, key: key, iv: iv, input: Array(data[16...]), tag: nil),
              let last = plain.last, (1...16).contains(Int(last)), Int(last) <= plain.count else { return nil }
        return Array(plain.dropLast(Int(last)))
    }

    /// AES-GCM as XML Encryption 1.1 frames it: a 12-byte IV, the ciphertext, a 16-byte tag;
    /// no additional data. The key is 16 or 32 bytes.
    public static func decryptAESGCM(_ data: [UInt8], key: [UInt8]) -> [UInt8]? {
        let cipher: OpaquePointer?
        switch key.count {
        case 16: cipher = EVP_aes_128_gcm()
        case 32: cipher = EVP_aes_256_gcm()
        default: return nil
        }
        guard data.count >= 12 + 16 else { return nil }
        return Symmetric.decrypt(cipher, key: key, iv: Array(data[0..<12]), input: Array(data[12..<(data.count - 16)]),
                                 tag: Array(data[(data.count - 16)...]))
    }
}

/// One AES decryption without padding removal; with `tag`, GCM and its check (and `aad`).
enum Symmetric {
    static func decrypt(_ cipher: OpaquePointer?, key: [UInt8], iv: [UInt8], input: [UInt8], tag: [UInt8]?,
                        aad: [UInt8] = []) -> [UInt8]? {
        guard let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context); ERR_clear_error() }
        guard EVP_DecryptInit_ex(context, cipher, nil, nil, nil) == 1 else { return nil }
        if tag != nil {
            guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, Int32(iv.count), nil) == 1 else { return nil }
        }
        guard key.withUnsafeBufferPointer({ k in iv.withUnsafeBufferPointer { v in
            EVP_DecryptInit_ex(context, nil, nil, k.baseAddress, v.baseAddress)
        } }) == 1 else { return nil }
        _ = EVP_CIPHER_CTX_set_padding(context, 0)
        var out = [UInt8](repeating: 0, count: input.count + 32)
        var length: Int32 = 0
        if !aad.isEmpty {
            guard aad.withUnsafeBufferPointer({ EVP_DecryptUpdate(context, nil, &length, $0.baseAddress, Int32($0.count)) }) == 1 else { return nil }
        }
        guard out.withUnsafeMutableBufferPointer({ o in input.withUnsafeBufferPointer { i in
            EVP_DecryptUpdate(context, o.baseAddress, &length, i.baseAddress, Int32(i.count))
        } }) == 1 else { return nil }
        let total = Int(length)
        if var tag {
            guard tag.withUnsafeMutableBufferPointer({ EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32($0.count), $0.baseAddress) }) == 1
            else { return nil }
        }
        var finalLength: Int32 = 0
        guard out.withUnsafeMutableBufferPointer({ EVP_DecryptFinal_ex(context, $0.baseAddress! + total, &finalLength) }) == 1 else { return nil }
        return Array(out[0..<(total + Int(finalLength))])
    }
}
