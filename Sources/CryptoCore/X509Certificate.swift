import COpenSSL

/// An X.509 certificate parsed by OpenSSL. Owns its `X509*`.
public final class X509Certificate: @unchecked Sendable {
    // Immutable after init; OpenSSL's X509 objects are safe for concurrent reads.
    let handle: OpaquePointer
    /// DER encoding of the certificate.
    public let der: [UInt8]
    /// SHA-256 over the DER, lower-case hex with colons (as `openssl x509 -fingerprint -sha256`).
    public let sha256Fingerprint: String
    /// Validity period, seconds since 1970.
    public let notBefore: Int64
    public let notAfter: Int64
    /// Subject in OpenSSL's one-line RFC 2253 form.
    public let subject: String

    private init(handle: OpaquePointer) throws {
        self.handle = handle
        var derPointer: UnsafeMutablePointer<UInt8>? = nil
        let length = i2d_X509(handle, &derPointer)
        guard length > 0, let derPointer else {
            ERR_clear_error()
            throw CryptoError.notPEMCertificate("certificate does not re-encode")
        }
        der = Array(UnsafeBufferPointer(start: derPointer, count: Int(length)))
        ssogate_OPENSSL_free(derPointer)
        sha256Fingerprint = try Digest.sha256(der).map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
        notBefore = Self.epochSeconds(X509_get0_notBefore(handle))
        notAfter = Self.epochSeconds(X509_get0_notAfter(handle))
        subject = Self.oneLine(X509_get_subject_name(handle))
    }

    deinit { X509_free(handle) }

    /// Every certificate in a PEM text, in order. Throws when there is none, or when a
    /// `BEGIN CERTIFICATE` block does not parse.
    public static func parseAll(pem: String) throws -> [X509Certificate] {
        let marker = "-----BEGIN CERTIFICATE-----"
        guard pem.contains(marker) else {
            throw CryptoError.notPEMCertificate("not a PEM certificate (no BEGIN CERTIFICATE marker)")
        }
        var certificates: [X509Certificate] = []
        var bytes = Array(pem.utf8)
        try bytes.withUnsafeMutableBufferPointer { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else {
                throw CryptoError.notPEMCertificate("out of memory")
            }
            defer { BIO_free(bio) }
            while let x509 = PEM_read_bio_X509(bio, nil, nil, nil) {
                certificates.append(try X509Certificate(handle: x509))
            }
            // The loop ends with PEM_R_NO_START_LINE at end of input; anything else is a bad block.
            let error = ERR_peek_last_error()
            ERR_clear_error()
            let noStartLine = ERR_GET_REASON_shim(error) == PEM_R_NO_START_LINE
            if certificates.isEmpty || (error != 0 && !noStartLine) {
                throw CryptoError.notPEMCertificate("not a PEM certificate (the block does not parse as X.509)")
            }
        }
        return certificates
    }

    private static func epochSeconds(_ time: UnsafePointer<ASN1_TIME>?) -> Int64 {
        guard let time else { return 0 }
        var parsed = tm()
        guard ASN1_TIME_to_tm(time, &parsed) == 1 else { ERR_clear_error(); return 0 }
        return Int64(timegm(&parsed))
    }

    private static func oneLine(_ name: OpaquePointer?) -> String {
        guard let name, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, ssogate_XN_FLAG_RFC2253()) >= 0 else { ERR_clear_error(); return "" }
        var out = [UInt8](repeating: 0, count: 1024)
        let n = BIO_read(bio, &out, Int32(out.count))
        return n > 0 ? String(decoding: out[0..<Int(n)], as: UTF8.self) : ""
    }
}
