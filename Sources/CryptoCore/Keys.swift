import COpenSSL

/// Signature algorithms of XML-DSig that ssogate knows. The allowlist of what is accepted
/// lives in XMLDSig; SHA-1 carries `insecure` in its name (docs/CODE-STYLE.md).
public enum SignatureAlgorithm: Sendable, Equatable, CaseIterable {
    case insecureRSASHA1, rsaSHA256, rsaSHA384, rsaSHA512
    case ecdsaSHA256, ecdsaSHA384, ecdsaSHA512

    public var digest: DigestAlgorithm {
        switch self {
        case .insecureRSASHA1: return .insecureSHA1
        case .rsaSHA256, .ecdsaSHA256: return .sha256
        case .rsaSHA384, .ecdsaSHA384: return .sha384
        case .rsaSHA512, .ecdsaSHA512: return .sha512
        }
    }

    var isECDSA: Bool {
        switch self {
        case .ecdsaSHA256, .ecdsaSHA384, .ecdsaSHA512: return true
        default: return false
        }
    }
}

/// A public key (RSA or EC) taken from a configured certificate. Owns its `EVP_PKEY`.
public final class PublicKey: @unchecked Sendable {
    // Immutable; OpenSSL keys are safe for concurrent verification.
    let handle: OpaquePointer
    public let isRSA: Bool
    public let bits: Int

    init(handle: OpaquePointer) {
        self.handle = handle
        isRSA = EVP_PKEY_get_base_id(handle) == EVP_PKEY_RSA
        bits = Int(EVP_PKEY_get_bits(handle))
    }

    deinit { EVP_PKEY_free(handle) }

    /// Whether `signature` is a valid signature of `data`. XML-DSig ECDSA values are raw
    /// `r || s`; OpenSSL wants DER, so they are converted first. A key of the wrong type
    /// for the algorithm never verifies.
    public func verify(signature: [UInt8], of data: [UInt8], algorithm: SignatureAlgorithm) -> Bool {
        guard algorithm.isECDSA != isRSA else { return false }
        var sig = signature
        if algorithm.isECDSA {
            guard let der = Self.rawToDER(signature, fieldBytes: (bits + 7) / 8) else { return false }
            sig = der
        }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context); ERR_clear_error() }
        guard EVP_DigestVerifyInit(context, nil, algorithm.digest.md, nil, handle) == 1 else { return false }
        let ok = sig.withUnsafeBufferPointer { s in
            data.withUnsafeBufferPointer { d in
                EVP_DigestVerify(context, s.baseAddress, s.count, d.baseAddress, d.count)
            }
        }
        return ok == 1
    }

    /// Raw `r || s` (each `fieldBytes` long) to a DER ECDSA-Sig-Value.
    static func rawToDER(_ raw: [UInt8], fieldBytes: Int) -> [UInt8]? {
        guard raw.count == 2 * fieldBytes, let sig = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(sig) }
        let r = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, Int32(fieldBytes), nil) }
        let s = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress! + fieldBytes, Int32(fieldBytes), nil) }
        guard let r, let s, ECDSA_SIG_set0(sig, r, s) == 1 else { return nil }
        var out: UnsafeMutablePointer<UInt8>? = nil
        let length = i2d_ECDSA_SIG(sig, &out)
        guard length > 0, let out else { return nil }
        defer { ssogate_OPENSSL_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }
}

extension X509Certificate {
    /// The certificate's public key; RSA keys under 2048 bits are refused.
    public func publicKey() throws(CryptoError) -> PublicKey {
        guard let pkey = X509_get_pubkey(handle) else {
            ERR_clear_error()
            throw .notPEMCertificate("certificate has no usable public key")
        }
        let key = PublicKey(handle: pkey)
        if key.isRSA && key.bits < 2048 { throw .keyTooWeak("RSA key of \(key.bits) bits; at least 2048 are required") }
        return key
    }
}

/// A private key for signing (the development IdP, the SP's AuthnRequests, tests).
public final class PrivateKey: @unchecked Sendable {
    let handle: OpaquePointer
    public let isRSA: Bool
    public let bits: Int

    public init(pem: String) throws(CryptoError) {
        var bytes = Array(pem.utf8)
        let key = bytes.withUnsafeMutableBufferPointer { buffer -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else {
            ERR_clear_error()
            throw .notPEMKey("not a PEM private key")
        }
        handle = key
        isRSA = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA
        bits = Int(EVP_PKEY_get_bits(key))
    }

    /// Takes ownership of a key OpenSSL just made.
    init(owning key: OpaquePointer) {
        handle = key
        isRSA = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA
        bits = Int(EVP_PKEY_get_bits(key))
    }

    deinit { EVP_PKEY_free(handle) }

    /// Whether this is the private half of `certificate`'s public key.
    public func matches(_ certificate: X509Certificate) -> Bool {
        guard let publicKey = X509_get0_pubkey(certificate.handle) else { return false }
        return EVP_PKEY_eq(publicKey, handle) == 1
    }

    /// Signs `data`; ECDSA signatures come back as raw `r || s`, as XML-DSig wants them.
    public func sign(_ data: [UInt8], algorithm: SignatureAlgorithm) throws(CryptoError) -> [UInt8] {
        guard algorithm.isECDSA != isRSA else { throw .signFailed("key type does not match the algorithm") }
        guard let context = EVP_MD_CTX_new() else { throw .signFailed("out of memory") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, algorithm.digest.md, nil, handle) == 1 else {
            ERR_clear_error()
            throw .signFailed("EVP_DigestSignInit failed")
        }
        var length = 0
        let sized = data.withUnsafeBufferPointer { EVP_DigestSign(context, nil, &length, $0.baseAddress, $0.count) }
        guard sized == 1 else { ERR_clear_error(); throw .signFailed("EVP_DigestSign failed") }
        var signature = [UInt8](repeating: 0, count: length)
        let ok = signature.withUnsafeMutableBufferPointer { s in
            data.withUnsafeBufferPointer { d in EVP_DigestSign(context, s.baseAddress, &length, d.baseAddress, d.count) }
        }
        guard ok == 1 else { ERR_clear_error(); throw .signFailed("EVP_DigestSign failed") }
        signature = Array(signature[0..<length])
        guard algorithm.isECDSA else { return signature }
        return try Self.derToRaw(signature, fieldBytes: (bits + 7) / 8)
    }

    static func derToRaw(_ der: [UInt8], fieldBytes: Int) throws(CryptoError) -> [UInt8] {
        let parsed = der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_ECDSA_SIG(nil, &pointer, buffer.count)
        }
        guard let parsed else { ERR_clear_error(); throw .signFailed("unreadable ECDSA signature") }
        defer { ECDSA_SIG_free(parsed) }
        var raw = [UInt8](repeating: 0, count: 2 * fieldBytes)
        let okR = raw.withUnsafeMutableBufferPointer { BN_bn2binpad(ECDSA_SIG_get0_r(parsed), $0.baseAddress, Int32(fieldBytes)) }
        let okS = raw.withUnsafeMutableBufferPointer { BN_bn2binpad(ECDSA_SIG_get0_s(parsed), $0.baseAddress! + fieldBytes, Int32(fieldBytes)) }
        guard okR == Int32(fieldBytes), okS == Int32(fieldBytes) else { throw .signFailed("ECDSA value out of range") }
        return raw
    }
}
