import Foundation

/// The identity a response proved, read only from signed bytes. Only `ResponseValidator`
/// makes one.
public struct ValidatedAssertion: Sendable, Equatable {
    public let assertionID: String
    public let issuer: String
    public let nameID: String
    public let nameIDFormat: String?
    public let sessionIndex: String?
    /// Attribute name → values, multi-valued, in document order.
    public let attributes: [String: [String]]
    /// When the assertion's validity ends (Conditions NotOnOrAfter).
    public let notOnOrAfter: Date
    /// The InResponseTo it answered, nil for IdP-initiated logins.
    public let inResponseTo: String?
    /// SHA-256 fingerprint of the certificate that verified the signature.
    public let verifiedBy: String

    init(assertionID: String, issuer: String, nameID: String, nameIDFormat: String?, sessionIndex: String?,
         attributes: [String: [String]], notOnOrAfter: Date, inResponseTo: String?, verifiedBy: String) {
        self.assertionID = assertionID
        self.issuer = issuer
        self.nameID = nameID
        self.nameIDFormat = nameIDFormat
        self.sessionIndex = sessionIndex
        self.attributes = attributes
        self.notOnOrAfter = notOnOrAfter
        self.inResponseTo = inResponseTo
        self.verifiedBy = verifiedBy
    }
}
