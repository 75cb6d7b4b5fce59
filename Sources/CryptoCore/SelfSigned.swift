import COpenSSL

/// A fresh RSA-2048 key pair and a self-signed certificate for it: the development IdP's
/// identity, made anew at each start and never written outside a temporary folder.
public struct SelfSignedIdentity: Sendable {
    public let key: PrivateKey
    public let certificate: X509Certificate
    public let certificatePEM: String

    public static func generate(commonName: String, days: Int = 30) throws -> SelfSignedIdentity {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nil) else { throw CryptoError.signFailed("out of memory") }
        defer { EVP_PKEY_CTX_free(context) }
        var pkey: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(context, 2048) == 1,
              EVP_PKEY_keygen(context, &pkey) == 1, let pkey else {
            ERR_clear_error()
            throw CryptoError.signFailed("RSA key generation failed")
        }
        let key = PrivateKey(owning: pkey)
        guard let x509 = X509_new() else { throw CryptoError.signFailed("out of memory") }
        defer { X509_free(x509) }
        let serial = try SecureRandom().bytes(8).reduce(0) { $0 << 8 | Int($1 & 0x7f) }
        let ok = X509_set_version(x509, 2) == 1
            && ASN1_INTEGER_set(X509_get_serialNumber(x509), serial) == 1
            && X509_gmtime_adj(X509_getm_notBefore(x509), -3600) != nil
            && X509_gmtime_adj(X509_getm_notAfter(x509), days * 86_400) != nil
            && X509_set_pubkey(x509, pkey) == 1
        guard ok, let name = X509_get_subject_name(x509),
              X509_NAME_add_entry_by_txt(name, "CN", 0x1001 /* MBSTRING_ASC */, commonName, -1, -1, 0) == 1,
              X509_set_issuer_name(x509, name) == 1, X509_sign(x509, pkey, EVP_sha256()) > 0 else {
            ERR_clear_error()
            throw CryptoError.signFailed("self-signed certificate failed")
        }
        guard let bio = BIO_new(BIO_s_mem()) else { throw CryptoError.signFailed("out of memory") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_X509(bio, x509) == 1 else { ERR_clear_error(); throw CryptoError.signFailed("PEM encoding failed") }
        var pem = [UInt8](repeating: 0, count: 8192)
        let length = BIO_read(bio, &pem, Int32(pem.count))
        guard length > 0 else { throw CryptoError.signFailed("PEM encoding failed") }
        let text = String(decoding: pem[0..<Int(length)], as: UTF8.self)
        guard let certificate = try X509Certificate.parseAll(pem: text).first else { throw CryptoError.signFailed("certificate does not parse") }
        return SelfSignedIdentity(key: key, certificate: certificate, certificatePEM: text)
    }
}
