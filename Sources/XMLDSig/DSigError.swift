/// The one error type of XMLDSig. Each code maps to an ACS reason code; `reason` carries
/// the detail for the log (never the browser).
public struct DSigError: Error, Equatable, Sendable, CustomStringConvertible {
    private enum Code: String, Sendable {
        case signatureMissing = "signature_missing"
        case signatureInvalid = "signature_invalid"
        case digestMismatch = "digest_mismatch"
        case algorithmNotAllowed = "algorithm_not_allowed"
        case malformed = "signature_malformed"
        case referenceMismatch = "reference_mismatch"
        /// The document would make canonicalization too costly (XMLLimits, PrefixList).
        case tooComplex = "too_complex"
    }
    private let code: Code
    public let reason: String

    private init(_ code: Code, _ reason: String) { self.code = code; self.reason = reason }
    public static func == (lhs: DSigError, rhs: DSigError) -> Bool { lhs.code == rhs.code }

    /// The stable reason code (`signature_invalid`, ...).
    public var reasonCode: String { code.rawValue }
    public var description: String { "\(code.rawValue): \(reason)" }

    public static let signatureMissing = DSigError(.signatureMissing, "")
    public static let signatureInvalid = DSigError(.signatureInvalid, "")
    public static let digestMismatch = DSigError(.digestMismatch, "")
    public static let algorithmNotAllowed = DSigError(.algorithmNotAllowed, "")
    public static let malformed = DSigError(.malformed, "")
    public static let referenceMismatch = DSigError(.referenceMismatch, "")
    public static let tooComplex = DSigError(.tooComplex, "")

    static func signatureMissing(_ r: String) -> DSigError { .init(.signatureMissing, r) }
    static func signatureInvalid(_ r: String) -> DSigError { .init(.signatureInvalid, r) }
    static func digestMismatch(_ r: String) -> DSigError { .init(.digestMismatch, r) }
    static func algorithmNotAllowed(_ r: String) -> DSigError { .init(.algorithmNotAllowed, r) }
    static func malformed(_ r: String) -> DSigError { .init(.malformed, r) }
    static func referenceMismatch(_ r: String) -> DSigError { .init(.referenceMismatch, r) }
    static func tooComplex(_ r: String) -> DSigError { .init(.tooComplex, r) }
}
