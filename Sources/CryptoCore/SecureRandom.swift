import COpenSSL

/// Cryptographically secure random bytes from OpenSSL's CSPRNG.
public struct SecureRandom: Sendable {
    public init() {}

    public func bytes(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        guard ok == 1 else {
            ERR_clear_error()
            throw CryptoError.randomFailed("RAND_bytes failed")
        }
        return out
    }
}
