import COpenSSL

/// Message digests through OpenSSL's EVP interface.
public enum DigestAlgorithm: Sendable, Equatable, CaseIterable {
    /// SHA-1 is broken for collision resistance; XML-DSig accepts it only behind the
    /// insecure-named `allow_sha1` option.
    case insecureSHA1
    case sha256, sha384, sha512

    var md: OpaquePointer? {
        switch self {
        case .insecureSHA1: return EVP_sha1()
        case .sha256: return EVP_sha256()
        case .sha384: return EVP_sha384()
        case .sha512: return EVP_sha512()
        }
    }
}

public enum Digest {
    public static func compute(_ algorithm: DigestAlgorithm, _ data: [UInt8]) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = data.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &out, &length, algorithm.md, nil)
        }
        guard ok == 1 else {
            ERR_clear_error()
            throw .digestFailed("EVP_Digest failed")
        }
        return Array(out[0..<Int(length)])
    }

    public static func sha256(_ data: [UInt8]) throws(CryptoError) -> [UInt8] { try compute(.sha256, data) }

    /// Compares in time independent of where the inputs differ (digest and MAC checks).
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
    }
}

/// The OpenSSL library the process runs against (`ssogate --version`).
public enum CryptoLibrary {
    /// "OpenSSL 3.0.x 1 Jan 2025", as the library says it.
    public static var runtimeVersion: String {
        OpenSSL_version(Int32(OPENSSL_VERSION)).map { String(cString: $0) } ?? "unknown"
    }
}
