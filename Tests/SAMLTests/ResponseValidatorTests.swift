import CryptoCore
import Foundation
import Testing
import XMLCore
import XMLDSig
@testable import SAML

enum IdP {
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/crypto/\(name)").path
    }
    static let cert = try! X509Certificate.parseAll(pem: String(contentsOfFile: fixture("rsa-2048.crt"), encoding: .utf8))[0]
    static let key = try! PrivateKey(pem: String(contentsOfFile: fixture("rsa-2048.key"), encoding: .utf8))
    static let otherCert = try! X509Certificate.parseAll(pem: String(contentsOfFile: fixture("test-idp.pem"), encoding: .utf8))[0]

    static let acs = "https://hub.example.test/organizations/acme/saml/consume"
    static let entity = "https://hub.example.test/organizations/acme/saml/metadata"
    static let issuer = "http://www.okta.com/exk-test"
    /// 2026-01-01T10:01:00Z, inside every window of the template.
    static let now = Date(timeIntervalSince1970: 1_767_261_660)

    struct Shape {
        var status = "urn:oasis:names:tc:SAML:2.0:status:Success"
        var destination: String? = acs
        var inResponseTo: String? = "id-request-1"
        var issuer = IdP.issuer
        var audience = entity
        var recipient = acs
        var confirmationEnd = "2026-01-01T10:05:00Z"
        var confirmationStart: String?
        var notBefore = "2026-01-01T09:59:00Z"
        var notOnOrAfter = "2026-01-01T10:05:00Z"
        var nameID = "alice@example.test"
        var assertionID = "id-assertion-1"
        var extraAssertion = false
    }

    static func xml(_ s: Shape) -> String {
        let irt = s.inResponseTo.map { " InResponseTo=\"\($0)\"" } ?? ""
        let dest = s.destination.map { " Destination=\"\($0)\"" } ?? ""
        let assertion = """
        <saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="\(s.assertionID)" Version="2.0" IssueInstant="2026-01-01T10:00:00Z">\
        <saml:Issuer>\(s.issuer)</saml:Issuer><saml:Subject>\
        <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">\(s.nameID)</saml:NameID>\
        <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData\(s.confirmationStart.map { " NotBefore=\"\($0)\"" } ?? "") NotOnOrAfter="\(s.confirmationEnd)" Recipient="\(s.recipient)"\(irt)/></saml:SubjectConfirmation>\
        </saml:Subject><saml:Conditions NotBefore="\(s.notBefore)" NotOnOrAfter="\(s.notOnOrAfter)"><saml:AudienceRestriction><saml:Audience>\(s.audience)</saml:Audience></saml:AudienceRestriction></saml:Conditions>\
        <saml:AuthnStatement AuthnInstant="2026-01-01T10:00:00Z" SessionIndex="session-1"/>\
        <saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>alice@example.test</saml:AttributeValue></saml:Attribute>\
        <saml:Attribute Name="groups"><saml:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">engineering</saml:AttributeValue>\
        <saml:AttributeValue>hf-admins</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>
        """
        let extra = s.extraAssertion ? "<saml:Assertion ID=\"id-evil\" Version=\"2.0\"><saml:Issuer>x</saml:Issuer></saml:Assertion>" : ""
        return """
        <samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-response-1" Version="2.0" IssueInstant="2026-01-01T10:00:00Z"\(dest)\(irt)>\
        <saml:Issuer>\(s.issuer)</saml:Issuer><samlp:Status><samlp:StatusCode Value="\(s.status)"/></samlp:Status>\(assertion)\(extra)</samlp:Response>
        """
    }

    enum Signing { case assertion, response, both, none }

    static func response(_ shape: Shape = Shape(), signing: Signing = .both) throws -> [UInt8] {
        XMLLibrary.initialize()
        let signer = SignatureSigner(key: key, certificate: cert)
        var bytes = Array(xml(shape).utf8)
        if signing == .assertion || signing == .both {
            bytes = try signer.sign(bytes, elementID: shape.assertionID, inclusivePrefixes: ["xs"])
        }
        if signing == .response || signing == .both {
            bytes = try signer.sign(bytes, elementID: "id-response-1")
        }
        return bytes
    }

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
