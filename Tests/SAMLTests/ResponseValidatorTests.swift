import CryptoCore
import Foundation
import Testing
import TestFixtures
import XMLCore
import XMLDSig
@testable import SAML

enum IdP {
    static let cert = SAMLResponseShape.certificate
    static let key = SAMLResponseShape.key
    static let otherCert = try! X509Certificate.parseAll(pem: Fixture.text("crypto/test-idp.pem"))[0]

    static let acs = SAMLResponseShape.acs("acme")
    static let entity = SAMLResponseShape.entity("acme")
    static let issuer = SAMLResponseShape.issuer
    static let now = SAMLResponseShape.now

    typealias Shape = SAMLResponseShape
    typealias Signing = SAMLResponseShape.Signing

    static func xml(_ s: Shape) -> String { s.xml }
    static func response(_ shape: Shape = Shape(), signing: Signing = .both) throws -> [UInt8] { try shape.signed(signing) }

    static func validator(idpEntityID: String? = issuer, idpInitiated: Bool = false, cache: ReplayCache = MemoryReplayCache(),
                          at time: Date = now, trusting cert: X509Certificate = IdP.cert) throws -> ResponseValidator {
        let settings = ServiceProviderSettings(entityID: entity, acsURL: acs, idpEntityID: idpEntityID,
                                               trusted: [try TrustedKey(certificate: cert)], allowInsecureSHA1: false,
                                               allowIdPInitiated: idpInitiated, clockSkew: 60)
        return ResponseValidator(settings: settings, replayCache: cache, clock: { time })
    }
}

private func refused(_ code: SAMLError, _ bytes: [UInt8], validator: ResponseValidator? = nil, request: String? = "id-request-1") {
    #expect(throws: code) { try (validator ?? IdP.validator()).validate(xml: bytes, expectedRequestID: request) }
}

@Suite("SAML response validation")
struct ResponseValidatorTests {
    @Test(arguments: [IdP.Signing.assertion, .response, .both])
    func anOktaShapedResponseIsAccepted(signing: IdP.Signing) throws {
        let result = try IdP.validator().validate(xml: IdP.response(signing: signing), expectedRequestID: "id-request-1")
        #expect(result.nameID == "alice@example.test")
        #expect(result.attributes["groups"] == ["engineering", "hf-admins"])
        #expect(result.sessionIndex == "session-1" && result.issuer == IdP.issuer && result.inResponseTo == "id-request-1")
        #expect(result.verifiedBy == IdP.cert.sha256Fingerprint)
    }

    @Test func theBase64FormFieldIsAccepted() throws {
        let field = Data(try IdP.response()).base64EncodedString(options: .lineLength64Characters)
        _ = try IdP.validator().validate(samlResponse: field, expectedRequestID: "id-request-1")
    }

    // Rule 1
    @Test func overTheSizeLimitIsTooLarge() { refused(.tooLarge, Array(repeating: 0x20, count: 256 * 1024 + 1)) }
    @Test func notBase64IsMalformed() {
        #expect(throws: SAMLError.malformed) { try IdP.validator().validate(samlResponse: "%%%not-base64", expectedRequestID: nil) }
    }
    @Test func aDoctypeIsForbidden() { refused(.dtdForbidden, Array("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>".utf8)) }
    // Rule 2
    @Test func aFailedStatusIsRefused() throws {
        var s = IdP.Shape(); s.status = "urn:oasis:names:tc:SAML:2.0:status:Requester"
        refused(.statusNotSuccess, try IdP.response(s))
    }
    // Rule 3
    @Test func twoAssertionsAreRefused() throws {
        var s = IdP.Shape(); s.extraAssertion = true
        refused(.multipleAssertions, try IdP.response(s, signing: .assertion))
    }
    // Rule 4
    @Test func anUnsignedResponseIsRefused() throws { refused(.signatureMissing, try IdP.response(signing: .none)) }
    @Test func aSignatureByAnUnconfiguredKeyIsRefused() throws {
        refused(.signatureInvalid, try IdP.response(), validator: try IdP.validator(trusting: IdP.otherCert))
    }
    // Rule 5
    @Test func aValueChangedAfterSigningIsRefused() throws {
        let text = String(decoding: try IdP.response(signing: .assertion), as: UTF8.self)
            .replacingOccurrences(of: ">alice@example.test</saml:NameID>", with: ">mallory@example.test</saml:NameID>")
        refused(.digestMismatch, Array(text.utf8))
    }
    @Test func aCommentInTheNameIDNeverTruncatesIt() throws {
        var s = IdP.Shape(); s.nameID = "alice@example.test<!---->.evil.test"
        let result = try IdP.validator().validate(xml: IdP.response(s), expectedRequestID: "id-request-1")
        #expect(result.nameID == "alice@example.test.evil.test")
    }
    // Rule 6
    @Test func anotherIssuerIsRefused() throws {
        var s = IdP.Shape(); s.issuer = "http://evil.example"
        refused(.issuerMismatch, try IdP.response(s))
    }
    @Test func anotherDestinationIsRefused() throws {
        var s = IdP.Shape(); s.destination = "https://other.example/acs"
        refused(.destinationMismatch, try IdP.response(s))
    }
    @Test func anotherAudienceIsRefused() throws {
        var s = IdP.Shape(); s.audience = "https://other.example/metadata"
        refused(.audienceMismatch, try IdP.response(s))
    }
    // Rule 7
    @Test func anotherRecipientIsRefused() throws {
        var s = IdP.Shape(); s.recipient = "https://other.example/acs"
        refused(.recipientMismatch, try IdP.response(s))
    }
    @Test func anExpiredSubjectConfirmationIsRefused() throws {
        var s = IdP.Shape(); s.confirmationEnd = "2026-01-01T09:59:30Z"
        refused(.subjectConfirmationExpired, try IdP.response(s))
    }
    @Test func expiredConditionsAreRefusedJustPastTheSkew() throws {
        var s = IdP.Shape(); s.confirmationEnd = "2026-01-01T10:10:00Z"  // Conditions end first
        let bytes = try IdP.response(s)
        _ = try IdP.validator(at: Date(timeIntervalSince1970: 1_767_261_900 + 59)).validate(xml: bytes, expectedRequestID: "id-request-1")
        refused(.expired, bytes, validator: try IdP.validator(at: Date(timeIntervalSince1970: 1_767_261_900 + 60)))
    }
    @Test func notYetValidConditionsAreRefusedBeyondTheSkew() throws {
        var s = IdP.Shape(); s.notBefore = "2026-01-01T10:02:01Z"
        refused(.notYetValid, try IdP.response(s))
        s.notBefore = "2026-01-01T10:01:59Z"
        _ = try IdP.validator().validate(xml: IdP.response(s), expectedRequestID: "id-request-1")
    }
    // Rule 8
    @Test func anUnknownInResponseToIsRefused() throws {
        refused(.inResponseToUnknown, try IdP.response(), request: "id-request-other")
    }
    /// An IdP-initiated response with only the Assertion signed: an InResponseTo added to the
    /// unsigned Response must not turn it into an answer to this browser's request.
    @Test func anInResponseToOnAnUnsignedResponseIsNotBelieved() throws {
        var s = IdP.Shape(); s.inResponseTo = nil
        let signed = String(decoding: try IdP.response(s, signing: .assertion), as: UTF8.self)
        let forged = signed.replacingOccurrences(of: "ID=\"id-response-1\"", with: "ID=\"id-response-1\" InResponseTo=\"id-request-1\"")
        #expect(forged != signed)
        refused(.unsolicitedNotAllowed, Array(forged.utf8))
    }

    @Test func everyAudienceRestrictionMustNameTheSP() throws {
        let signedXML = IdP.xml(IdP.Shape()).replacingOccurrences(
            of: "</saml:AudienceRestriction></saml:Conditions>",
            with: "</saml:AudienceRestriction><saml:AudienceRestriction><saml:Audience>https://other.example</saml:Audience></saml:AudienceRestriction></saml:Conditions>")
        XMLLibrary.initialize()
        let bytes = try SignatureSigner(key: IdP.key, certificate: IdP.cert).sign(Array(signedXML.utf8), elementID: "id-assertion-1", inclusivePrefixes: ["xs"])
        refused(.audienceMismatch, bytes)
    }

    @Test func aFullReplayCacheFailsClosed() throws {
        let cache = MemoryReplayCache(capacity: 1)
        var s = IdP.Shape(); s.inResponseTo = nil
        _ = try IdP.validator(idpInitiated: true, cache: cache).validate(xml: IdP.response(s), expectedRequestID: nil)
        s.assertionID = "id-assertion-2"
        refused(.stateStoreUnavailable, try IdP.response(s), validator: try IdP.validator(idpInitiated: true, cache: cache), request: nil)
    }

    @Test func aSolicitedResponseWithoutLoginStateSaysSo() throws {
        refused(.loginStateMissing, try IdP.response(), request: nil)
    }
    @Test func aRequestIDIsSpentOnce() throws {
        let cache = MemoryReplayCache()
        _ = try IdP.validator(cache: cache).validate(xml: IdP.response(), expectedRequestID: "id-request-1")
        var s = IdP.Shape(); s.assertionID = "id-assertion-2"
        refused(.inResponseToUnknown, try IdP.response(s), validator: try IdP.validator(cache: cache))
    }
    @Test func anUnsolicitedResponseNeedsTheOptIn() throws {
        var s = IdP.Shape(); s.inResponseTo = nil
        refused(.unsolicitedNotAllowed, try IdP.response(s), request: nil)
        _ = try IdP.validator(idpInitiated: true).validate(xml: IdP.response(s), expectedRequestID: nil)
    }
    // Rule 9
    @Test func aReplayedAssertionIsRefused() throws {
        let cache = MemoryReplayCache()
        var s = IdP.Shape(); s.inResponseTo = nil
        let bytes = try IdP.response(s)
        _ = try IdP.validator(idpInitiated: true, cache: cache).validate(xml: bytes, expectedRequestID: nil)
        refused(.assertionReplayed, bytes, validator: try IdP.validator(idpInitiated: true, cache: cache), request: nil)
    }

    @Test func timesParseStrictly() {
        #expect(SAMLTime.parse("2026-01-01T10:05:00Z") == Date(timeIntervalSince1970: 1_767_261_900))
        #expect(SAMLTime.parse("2026-01-01T10:05:00.500Z") == Date(timeIntervalSince1970: 1_767_261_900.5))
        #expect(SAMLTime.parse("2026-01-01T11:05:00+01:00") == Date(timeIntervalSince1970: 1_767_261_900))
        for bad in ["2026-01-01 10:05:00Z", "2026-01-01T10:05:00", "2026-13-01T10:05:00Z", "2026-01-01T10:05:00Zjunk", ""] {
            #expect(SAMLTime.parse(bad) == nil, "\(bad)")
        }
    }
}
