import CryptoCore
import Foundation
import XMLCore
import XMLDSig

/// What the SP checks a response against, per organization.
public struct ServiceProviderSettings: Sendable {
    /// `{public_url}/organizations/{org}/saml/metadata`: the Audience that must be present.
    public let entityID: String
    /// `{public_url}/organizations/{org}/saml/consume`: Destination and Recipient.
    public let acsURL: String
    /// When set, the assertion's Issuer must equal it.
    public let idpEntityID: String?
    public let trusted: [TrustedKey]
    public let allowInsecureSHA1: Bool
    public let allowIdPInitiated: Bool
    public let clockSkew: TimeInterval
    /// The SP's private key, for EncryptedAssertion; without it an encrypted one is refused.
    public let decryptionKey: PrivateKey?
    /// Refuse plain assertions (only EncryptedAssertion is accepted).
    public let requireEncryptedAssertions: Bool

    public init(entityID: String, acsURL: String, idpEntityID: String?, trusted: [TrustedKey],
                allowInsecureSHA1: Bool, allowIdPInitiated: Bool, clockSkew: TimeInterval,
                decryptionKey: PrivateKey? = nil, requireEncryptedAssertions: Bool = false) {
        self.entityID = entityID
        self.acsURL = acsURL
        self.idpEntityID = idpEntityID
        self.trusted = trusted
        self.allowInsecureSHA1 = allowInsecureSHA1
        self.allowIdPInitiated = allowIdPInitiated
        self.clockSkew = clockSkew
        self.decryptionKey = decryptionKey
        self.requireEncryptedAssertions = requireEncryptedAssertions
    }
}

enum SAMLNS {
    static let protocol_ = "urn:oasis:names:tc:SAML:2.0:protocol"
    static let assertion = "urn:oasis:names:tc:SAML:2.0:assertion"
    static let success = "urn:oasis:names:tc:SAML:2.0:status:Success"
    static let bearer = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
}

/// Turns an untrusted SAMLResponse into a `ValidatedAssertion` or one reason code: the
/// nine ACS rules of docs/CONTRACT.md, in order. Clock and replay cache are injected (docs/CODE-STYLE.md).
public struct ResponseValidator: Sendable {
    public static let maxDecodedBytes = 256 * 1024
    /// A login-state cookie lives 10 minutes; its request ID is remembered a little longer.
    static let requestIDLifetime: TimeInterval = 3600

    public let settings: ServiceProviderSettings
    public let replayCache: ReplayCache
    public let clock: @Sendable () -> Date

    public init(settings: ServiceProviderSettings, replayCache: ReplayCache, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.settings = settings
        self.replayCache = replayCache
        self.clock = clock
    }

    /// The HTTP-POST binding's `SAMLResponse` field. `expectedRequestID` is the AuthnRequest
    /// ID bound to this browser (nil when none is outstanding).
    public func validate(samlResponse: String, expectedRequestID: String?) throws(SAMLError) -> ValidatedAssertion {
        try spendInCache(check(samlResponse: samlResponse, expectedRequestID: expectedRequestID))
    }

    /// Rules 1 to 8, and the IDs rule 8 and 9 must spend (nothing is spent yet): for a
    /// store that is asked asynchronously, or shared by several replicas.
    public func check(samlResponse: String, expectedRequestID: String?) throws(SAMLError) -> (ValidatedAssertion, [ReplaySpend]) {
        // Rule 1: at most 256 KiB decoded; checked on the encoded size first, cheaply (line
        // breaks, which some IdPs add every 76 columns, allowed for).
        let encodedLimit = (Self.maxDecodedBytes / 3 + 1) * 4
        guard samlResponse.utf8.count <= encodedLimit + encodedLimit / 38 else {
            throw SAMLError("too_large", "\(samlResponse.utf8.count) base64 bytes")
        }
        guard let data = Base64.decode(samlResponse, skippingXMLWhitespace: true) else {
            throw SAMLError("malformed", "SAMLResponse is not base64")
        }
        return try check(xml: data, expectedRequestID: expectedRequestID)
    }

    public func validate(xml: [UInt8], expectedRequestID: String?) throws(SAMLError) -> ValidatedAssertion {
        try spendInCache(check(xml: xml, expectedRequestID: expectedRequestID))
    }

    /// Rules 8 and 9 against this validator's own replay cache, request ID first.
    private func spendInCache(_ checked: (ValidatedAssertion, [ReplaySpend])) throws(SAMLError) -> ValidatedAssertion {
        for spend in checked.1 {
            switch replayCache.spend(spend.id, until: spend.until, now: clock()) {
            case .spent: continue
            case .alreadySpent: throw spend.refusal
            case .unavailable: throw SAMLError("state_store_unavailable", "the replay cache cannot record \(spend.id)")
            }
        }
        return checked.0
    }

    public func check(xml: [UInt8], expectedRequestID: String?) throws(SAMLError) -> (ValidatedAssertion, [ReplaySpend]) {
        guard xml.count <= Self.maxDecodedBytes else { throw SAMLError("too_large", "\(xml.count) bytes after base64 decoding") }
        let now = clock()
        let response = try Self.parse(xml)                                        // rule 1
        try Self.checkStatus(response)                                            // rule 2
        let signed: (response: XMLElement?, assertion: XMLElement, verifiedBy: String)
        switch try Self.soleAssertion(of: response) {                             // rule 3
        case .plain(let unsignedAssertion):
            guard !settings.requireEncryptedAssertions else {
                throw SAMLError("assertion_not_encrypted", "require_encrypted_assertions is on and the Assertion came in the clear")
            }
            signed = try verifySignatures(response, unsignedAssertion)            // rules 4, 5
        case .encrypted(let encrypted):
            signed = try openEncrypted(response, encrypted)                       // rules 4, 5, then 3 again
        }
        let assertion = signed.assertion
        guard let assertionID = assertion.attribute("ID") else { throw SAMLError("malformed", "Assertion without ID") }
        let issuer = try checkIssuerDestinationAudience(signed.response ?? response, assertion)  // rule 6
        let (confirmation, validUntil) = try checkConfirmationAndConditions(assertion, now: now) // rule 7
        // Only signed values count (rule 5): the Response's InResponseTo is read when the
        // Response itself was verified, never from an unsigned wrapper.
        let inResponseTo = try checkInResponseTo(confirmation, signed.response, expected: expectedRequestID)  // rule 8
        var spends: [ReplaySpend] = []
        if let inResponseTo {
            spends.append(ReplaySpend(id: "request:" + inResponseTo, until: now.addingTimeInterval(Self.requestIDLifetime),
                                      refusal: SAMLError("in_response_to_unknown", "request \(inResponseTo) was already answered")))
        }
        spends.append(ReplaySpend(id: "assertion:" + assertionID, until: validUntil.addingTimeInterval(settings.clockSkew),
                                  refusal: SAMLError("assertion_replayed", "assertion \(assertionID) was already used")))  // rule 9
        return (try Self.identity(of: assertion, id: assertionID, issuer: issuer, validUntil: validUntil,
                                  inResponseTo: inResponseTo, verifiedBy: signed.verifiedBy), spends)
    }

    // MARK: - Rules

    /// Rule 1: well-formed, no DOCTYPE, a samlp:Response at the root.
    private static func parse(_ xml: [UInt8]) throws(SAMLError) -> XMLElement {
        let document = try protocolMessage(xml, named: "Response")
        return document.root
    }

    /// Rule 2: Success. Read before any signature: it can only lead to a refusal.
    private static func checkStatus(_ response: XMLElement) throws(SAMLError) {
        let status = response.children(named: "Status", in: SAMLNS.protocol_).first?
            .children(named: "StatusCode", in: SAMLNS.protocol_).first?.attribute("Value")
        guard status == SAMLNS.success else { throw SAMLError("status_not_success", status ?? "no StatusCode") }
    }

    private enum Located {
        case plain(XMLElement)
        case encrypted(XMLElement)
    }

    /// Rule 3: exactly one Assertion or EncryptedAssertion in the whole document, a direct
    /// child of the Response (every signature-wrapping permutation needs a second one
    /// somewhere). A decrypted Assertion is checked the same way once it is open.
    private static func soleAssertion(of response: XMLElement) throws(SAMLError) -> Located {
        let plain = count(response, named: "Assertion")
        let encrypted = count(response, named: "EncryptedAssertion")
        let everywhere = plain + encrypted
        guard everywhere > 0 else { throw SAMLError("no_assertion", "the response holds no Assertion") }
        guard everywhere == 1 else {
            throw SAMLError("multiple_assertions", "\(plain) Assertion and \(encrypted) EncryptedAssertion elements in the document")
        }
        let name = plain == 1 ? "Assertion" : "EncryptedAssertion"
        let direct = response.children(named: name, in: SAMLNS.assertion)
        guard direct.count == 1 else { throw SAMLError("multiple_assertions", "the \(name) is not a direct child of the Response") }
        return plain == 1 ? .plain(direct[0]) : .encrypted(direct[0])
    }

    /// Rules 4 and 5 for an EncryptedAssertion. A signed Response is verified before
    /// anything is decrypted, and the EncryptedAssertion read from the verified copy; the
    /// decrypted Assertion's own signature, when present, must hold too. An unsigned
    /// Response needs a signed Assertion inside, and then every failure after decryption
    /// started, that signature's included, is the one `decryption_failed`: whether a
    /// tampered ciphertext decrypted to well-formed XML must not show (the XML Encryption
    /// CBC attack needs exactly that signal).
    private func openEncrypted(_ response: XMLElement, _ encrypted: XMLElement) throws(SAMLError)
        -> (response: XMLElement?, assertion: XMLElement, verifiedBy: String) {
        guard let key = settings.decryptionKey else {
            throw SAMLError("encrypted_assertion_unsupported", "EncryptedAssertion needs the SP key pair (sp_certificate_file, sp_private_key_file)")
        }
        let decryptor = AssertionDecryptor(key: key)
        let verifier = SignatureVerifier(trusted: settings.trusted, allowInsecureSHA1: settings.allowInsecureSHA1)
        let dsig = "http://www.w3.org/2000/09/xmldsig#"
        if !response.children(named: "Signature", in: dsig).isEmpty {
            let signed = try Self.mapping { () throws(DSigError) in try verifier.verify(response) }
            let inner = signed.element.children(named: "EncryptedAssertion", in: SAMLNS.assertion)
            guard inner.count == 1 else { throw SAMLError("multiple_assertions", "signed Response holds \(inner.count) EncryptedAssertions") }
            let assertion = try decryptor.decrypt(inner[0])
            guard Self.count(assertion, named: "Assertion") == 1 else { throw SAMLError("multiple_assertions", "Assertion inside the decrypted Assertion") }
            guard !assertion.children(named: "Signature", in: dsig).isEmpty else {
                return (signed.element, assertion, signed.verifiedBy.sha256Fingerprint)
            }
            let verified = try Self.mapping { () throws(DSigError) in try verifier.verify(assertion) }
            return (signed.element, verified.element, signed.verifiedBy.sha256Fingerprint)
        }
        let assertion = try decryptor.decrypt(encrypted)
        guard Self.count(assertion, named: "Assertion") == 1,
              let verified = try? verifier.verify(assertion) else { throw AssertionDecryptor.failed }
        return (nil, verified.element, verified.verifiedBy.sha256Fingerprint)
    }

    /// Rules 4 and 5: the Assertion signed, or the Response signed over it; from here on
    /// only elements returned by the verifier are read.
    private func verifySignatures(_ response: XMLElement, _ documentAssertion: XMLElement) throws(SAMLError)
        -> (response: XMLElement?, assertion: XMLElement, verifiedBy: String) {
        let verifier = SignatureVerifier(trusted: settings.trusted, allowInsecureSHA1: settings.allowInsecureSHA1)
        let dsig = "http://www.w3.org/2000/09/xmldsig#"
        guard !response.children(named: "Signature", in: dsig).isEmpty else {
            let signed = try Self.mapping { () throws(DSigError) in try verifier.verify(documentAssertion) }
            return (nil, signed.element, signed.verifiedBy.sha256Fingerprint)
        }
        let signed = try Self.mapping { () throws(DSigError) in try verifier.verify(response) }
        let inner = signed.element.children(named: "Assertion", in: SAMLNS.assertion)
        guard inner.count == 1 else { throw SAMLError("multiple_assertions", "signed Response holds \(inner.count) Assertions") }
        guard !documentAssertion.children(named: "Signature", in: dsig).isEmpty else {
            return (signed.element, inner[0], signed.verifiedBy.sha256Fingerprint)
        }
        // Both signed (Okta's default): the inner signature must hold too. It is checked on
        // the document's Assertion, not the canonical copy: exclusive C14N of the Response
        // drops namespace declarations used only inside attribute values (`xs` in
        // xsi:type), which the Assertion's own PrefixList keeps. It is the same element:
        // rule 3 left exactly one Assertion in the document.
        let assertion = try Self.mapping { () throws(DSigError) in try verifier.verify(documentAssertion) }.element
        return (signed.element, assertion, signed.verifiedBy.sha256Fingerprint)
    }

    /// Rule 6: Issuer, Destination, Audience. Returns the Issuer.
    private func checkIssuerDestinationAudience(_ response: XMLElement, _ assertion: XMLElement) throws(SAMLError) -> String {
        let issuer = assertion.children(named: "Issuer", in: SAMLNS.assertion).first?.textContent.trimmingSpaces() ?? ""
        if let expected = settings.idpEntityID, issuer != expected {
            throw SAMLError("issuer_mismatch", "expected \(expected), received \(issuer)")
        }
        if let destination = response.attribute("Destination"), destination != settings.acsURL {
            throw SAMLError("destination_mismatch", "expected \(settings.acsURL), received \(destination)")
        }
        let conditions = assertion.children(named: "Conditions", in: SAMLNS.assertion)
        guard conditions.count <= 1 else { throw SAMLError("malformed", "several Conditions") }
        // Every AudienceRestriction must name this SP (SAML Core §2.5.1.4: each one is a
        // condition of its own); at least one must be present.
        let restrictions = conditions.first?.children(named: "AudienceRestriction", in: SAMLNS.assertion) ?? []
        let audiences = restrictions.map { $0.children(named: "Audience", in: SAMLNS.assertion).map { $0.textContent.trimmingSpaces() } }
        guard !restrictions.isEmpty, audiences.allSatisfy({ $0.contains(settings.entityID) }) else {
            throw SAMLError("audience_mismatch", "expected \(settings.entityID) in every restriction, received \(audiences)")
        }
        return issuer
    }

    /// Rule 7: a bearer SubjectConfirmation for this ACS, still valid, and the Conditions'
    /// window, both within `clock_skew`. Returns the confirmation and when validity ends.
    private func checkConfirmationAndConditions(_ assertion: XMLElement, now: Date) throws(SAMLError) -> (XMLElement, Date) {
        let subject = assertion.children(named: "Subject", in: SAMLNS.assertion).first
        let confirmations = (subject?.children(named: "SubjectConfirmation", in: SAMLNS.assertion) ?? [])
            .filter { $0.attribute("Method") == SAMLNS.bearer }
            .compactMap { $0.children(named: "SubjectConfirmationData", in: SAMLNS.assertion).first }
        guard !confirmations.isEmpty else { throw SAMLError("recipient_mismatch", "no bearer SubjectConfirmationData") }
        guard let confirmation = confirmations.first(where: { $0.attribute("Recipient") == settings.acsURL }) else {
            throw SAMLError("recipient_mismatch", "expected \(settings.acsURL), received \(confirmations.map { $0.attribute("Recipient") ?? "none" })")
        }
        guard let confirmationEnd = confirmation.attribute("NotOnOrAfter").flatMap(SAMLTime.parse) else {
            throw SAMLError("malformed", "SubjectConfirmationData without a valid NotOnOrAfter")
        }
        guard now.addingTimeInterval(-settings.clockSkew) < confirmationEnd else {
            throw SAMLError("subject_confirmation_expired", "NotOnOrAfter \(confirmationEnd) is \(Int(now.timeIntervalSince(confirmationEnd)))s in the past")
        }
        // SAML Core §2.4.1.2: a bearer confirmation's NotBefore, when an IdP sends one, is
        // as binding as its NotOnOrAfter.
        if let text = confirmation.attribute("NotBefore") {
            guard let notBefore = SAMLTime.parse(text) else { throw SAMLError("malformed", "SubjectConfirmationData NotBefore \(text)") }
            guard now.addingTimeInterval(settings.clockSkew) >= notBefore else {
                throw SAMLError("not_yet_valid", "SubjectConfirmationData NotBefore \(text) is \(Int(notBefore.timeIntervalSince(now)))s ahead")
            }
        }
        var validUntil = confirmationEnd
        if let condition = assertion.children(named: "Conditions", in: SAMLNS.assertion).first {
            if let text = condition.attribute("NotBefore") {
                guard let notBefore = SAMLTime.parse(text) else { throw SAMLError("malformed", "Conditions NotBefore \(text)") }
                guard now.addingTimeInterval(settings.clockSkew) >= notBefore else {
                    throw SAMLError("not_yet_valid", "NotBefore \(text) is \(Int(notBefore.timeIntervalSince(now)))s ahead")
                }
            }
            if let text = condition.attribute("NotOnOrAfter") {
                guard let end = SAMLTime.parse(text) else { throw SAMLError("malformed", "Conditions NotOnOrAfter \(text)") }
                guard now.addingTimeInterval(-settings.clockSkew) < end else {
                    throw SAMLError("expired", "NotOnOrAfter \(text) is \(Int(now.timeIntervalSince(end)))s in the past")
                }
                validUntil = end
            }
        }
        return (confirmation, validUntil)
    }

    /// Rule 8: InResponseTo against the request bound to this browser, which is then spent;
    /// none at all only with `allow_idp_initiated`.
    private func checkInResponseTo(_ confirmation: XMLElement, _ signedResponse: XMLElement?, expected: String?) throws(SAMLError) -> String? {
        let fromAssertion = confirmation.attribute("InResponseTo")
        let fromResponse = signedResponse?.attribute("InResponseTo")
        if let a = fromAssertion, let r = fromResponse, a != r {
            throw SAMLError("in_response_to_unknown", "Response answers \(r) but its Assertion \(a)")
        }
        guard let answered = fromAssertion ?? fromResponse else {
            guard settings.allowIdPInitiated else {
                throw SAMLError("unsolicited_not_allowed", "no InResponseTo and allow_idp_initiated is off")
            }
            return nil
        }
        guard let expected else {
            // The response answers a request, but the browser brought no login state: most
            // often a SameSite or third-party-cookie setting dropped it on the IdP's POST.
            throw SAMLError("login_state_missing", "answers \(answered); no login-state cookie came back")
        }
        guard answered == expected else {
            throw SAMLError("in_response_to_unknown", "answers \(answered), outstanding \(expected)")
        }
        return answered
    }

    /// The identity, from the signed Assertion only.
    private static func identity(of assertion: XMLElement, id: String, issuer: String, validUntil: Date,
                                 inResponseTo: String?, verifiedBy: String) throws(SAMLError) -> ValidatedAssertion {
        let subject = assertion.children(named: "Subject", in: SAMLNS.assertion).first
        guard let nameIDElement = subject?.children(named: "NameID", in: SAMLNS.assertion).first else {
            throw SAMLError("malformed", "Subject without NameID")
        }
        let nameID = nameIDElement.textContent.trimmingSpaces()
        guard !nameID.isEmpty else { throw SAMLError("malformed", "empty NameID") }
        guard IdentityValue.isClean(nameID) else { throw SAMLError("invalid_identity_value", "NameID holds a control character") }
        var attributes: [String: [String]] = [:]
        for statement in assertion.children(named: "AttributeStatement", in: SAMLNS.assertion) {
            for attribute in statement.children(named: "Attribute", in: SAMLNS.assertion) {
                guard let name = attribute.attribute("Name") else { continue }
                attributes[name, default: []] += attribute.children(named: "AttributeValue", in: SAMLNS.assertion).map(\.textContent)
            }
        }
        let sessionIndex = assertion.children(named: "AuthnStatement", in: SAMLNS.assertion).first?.attribute("SessionIndex")
        return ValidatedAssertion(assertionID: id, issuer: issuer, nameID: nameID, nameIDFormat: nameIDElement.attribute("Format"),
                                  sessionIndex: sessionIndex, attributes: attributes, notOnOrAfter: validUntil,
                                  inResponseTo: inResponseTo, verifiedBy: verifiedBy)
    }

    /// A SAML protocol message whose root is `samlp:{name}`: well-formed, no DOCTYPE, within
    /// XMLLimits.message (past a bound it is refused before libxml2 spends on it).
    static func protocolMessage(_ xml: [UInt8], named name: String) throws(SAMLError) -> XMLDocument {
        let document: XMLDocument
        do {
            document = try XMLDocument.parse(xml)
        } catch {
            switch error {
            case .dtdForbidden: throw SAMLError("dtd_forbidden", error.reason)
            case .tooLarge: throw SAMLError("too_large", error.reason)
            case .tooComplex, .tooDeep: throw SAMLError("too_complex", error.reason)
            default: throw SAMLError("malformed", error.reason)
            }
        }
        guard document.root.isNamed(name, in: SAMLNS.protocol_) else {
            throw SAMLError("malformed", "root element is \(document.root.localName), not samlp:\(name)")
        }
        return document
    }

    static func mapping<T>(_ body: () throws(DSigError) -> T) throws(SAMLError) -> T {
        do {
            return try body()
        } catch {
            throw SAMLError(error.reasonCode == "signature_malformed" ? "signature_malformed" : error.reasonCode, error.reason)
        }
    }

    /// Elements named `localName` in the assertion namespace anywhere below `root`.
    private static func count(_ root: XMLElement, named localName: String) -> Int {
        var total = root.isNamed(localName, in: SAMLNS.assertion) ? 1 : 0
        for child in root.children { total += count(child, named: localName) }
        return total
    }
}

extension String {
    /// Without XML whitespace (space, tab, CR, LF) at either end, and nothing else removed:
    /// a NO-BREAK SPACE or other Unicode space is part of the value (`victim@acme.com` + U+00A0
    /// is another subject, not the victim).
    func trimmingSpaces() -> String {
        let bytes = Array(utf8)
        func xmlSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        guard let first = bytes.firstIndex(where: { !xmlSpace($0) }), let last = bytes.lastIndex(where: { !xmlSpace($0) }) else { return "" }
        if first == 0 && last == bytes.count - 1 { return self }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}

/// Identity values (NameID, email, groups) travel to the upstream in headers and JWTs: a
/// control character in one could split a header or be dropped by one parser and kept by
/// another, so a login that carries one is refused (`invalid_identity_value`), never
/// silently altered.
public enum IdentityValue {
    /// No C0 control (tab, CR and LF included), DEL or C1 control.
    public static func isClean(_ value: String) -> Bool {
        value.unicodeScalars.allSatisfy { scalar in
            let v = scalar.value
            return !(v < 0x20 || (0x7F...0x9F).contains(v))
        }
    }
}
