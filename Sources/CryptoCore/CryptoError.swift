/// The one error type of CryptoCore: a stable code plus a human reason.
/// Equality compares the code only (docs/CODE-STYLE.md "Errors").
public struct CryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    private enum Code: Sendable { case notPEMCertificate, notPEMKey, randomFailed, digestFailed, signFailed, keyTooWeak }
    private let code: Code
    public let reason: String

    private init(_ code: Code, _ reason: String) { self.code = code; self.reason = reason }

    public static func == (lhs: CryptoError, rhs: CryptoError) -> Bool { lhs.code == rhs.code }

    public static func notPEMCertificate(_ reason: String) -> CryptoError { .init(.notPEMCertificate, reason) }
    public static func randomFailed(_ reason: String) -> CryptoError { .init(.randomFailed, reason) }
    public static func digestFailed(_ reason: String) -> CryptoError { .init(.digestFailed, reason) }

    public static func notPEMKey(_ reason: String) -> CryptoError { .init(.notPEMKey, reason) }
    public static func signFailed(_ reason: String) -> CryptoError { .init(.signFailed, reason) }
    public static func keyTooWeak(_ reason: String) -> CryptoError { .init(.keyTooWeak, reason) }

    public static let notPEMCertificate = CryptoError(.notPEMCertificate, "")
    public static let notPEMKey = CryptoError(.notPEMKey, "")
    public static let signFailed = CryptoError(.signFailed, "")
    public static let keyTooWeak = CryptoError(.keyTooWeak, "")
    public static let randomFailed = CryptoError(.randomFailed, "")
    public static let digestFailed = CryptoError(.digestFailed, "")

    public var description: String { reason }
}
