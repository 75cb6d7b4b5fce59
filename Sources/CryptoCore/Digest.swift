import COpenSSL

/// Message digests through OpenSSL's EVP interface.
public enum Digest {
    public static func sha256(_ data: [UInt8]) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = data.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &out, &length, EVP_sha256(), nil)
        }
        guard ok == 1 else {
            ERR_clear_error()
            throw CryptoError.digestFailed("EVP_Digest(SHA-256) failed")
        }
        return Array(out[0..<Int(length)])
    }
}
