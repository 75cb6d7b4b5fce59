/// Why a SAML response was refused: a stable reason code for the browser, the log and the
/// metrics, and a detail (expected vs received, clock delta) for the log only.
public struct SAMLError: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: String
    public let detail: String

    public init(_ code: String, _ detail: String) { self.code = code; self.detail = detail }
    public static func == (lhs: SAMLError, rhs: SAMLError) -> Bool { lhs.code == rhs.code }
    public var description: String { "\(code): \(detail)" }

    static func code(_ code: String) -> SAMLError { SAMLError(code, "") }

    public static let tooLarge = code("too_large")
    public static let malformed = code("malformed")
    public static let dtdForbidden = code("dtd_forbidden")
    public static let statusNotSuccess = code("status_not_success")
    public static let multipleAssertions = code("multiple_assertions")
    public static let noAssertion = code("no_assertion")
    public static let encryptedAssertionUnsupported = code("encrypted_assertion_unsupported")
    public static let signatureMissing = code("signature_missing")
    public static let signatureInvalid = code("signature_invalid")
    public static let digestMismatch = code("digest_mismatch")
    public static let algorithmNotAllowed = code("algorithm_not_allowed")
    public static let signatureMalformed = code("signature_malformed")
    public static let referenceMismatch = code("reference_mismatch")
    public static let issuerMismatch = code("issuer_mismatch")
    public static let destinationMismatch = code("destination_mismatch")
    public static let audienceMismatch = code("audience_mismatch")
    public static let recipientMismatch = code("recipient_mismatch")
    public static let subjectConfirmationExpired = code("subject_confirmation_expired")
    public static let expired = code("expired")
    public static let notYetValid = code("not_yet_valid")
    public static let inResponseToUnknown = code("in_response_to_unknown")
    public static let loginStateMissing = code("login_state_missing")
    public static let unsolicitedNotAllowed = code("unsolicited_not_allowed")
    public static let assertionReplayed = code("assertion_replayed")
    public static let stateStoreUnavailable = code("state_store_unavailable")
    /// Raised by the gateway, not the validator: the login's grant cannot fit in a cookie.
    public static let sessionTooLarge = code("session_too_large")
}
