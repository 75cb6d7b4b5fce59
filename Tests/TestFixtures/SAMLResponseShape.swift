import CryptoCore
import Foundation
import XMLCore
import XMLDSig

/// An Okta-shaped SAML response for the tests to vary one field at a time: every field
/// valid for `hub.example.test`'s organization `acme` and the IdP of the crypto fixture at
/// 2026-01-01T10:01:00Z (`now`), signed by our signer (itself checked by `xmlsec1 --verify`
/// in XMLDSigTests). The one builder of the SAML, gateway and fuzz tests.
public struct SAMLResponseShape: Sendable {
    public static let issuer = "http://www.okta.com/exk-test"
    /// 2026-01-01T10:01:00Z, inside every window of the template.
    public static let now = Date(timeIntervalSince1970: 1_767_261_660)

    public static func acs(_ organization: String) -> String { "https://hub.example.test/organizations/\(organization)/saml/consume" }
    public static func entity(_ organization: String) -> String { "https://hub.example.test/organizations/\(organization)/saml/metadata" }

    public var status = "urn:oasis:names:tc:SAML:2.0:status:Success"
    public var destination: String? = acs("acme")
    public var inResponseTo: String? = "id-request-1"
    public var issuer = SAMLResponseShape.issuer
    public var audience = entity("acme")
    public var recipient = acs("acme")
    public var confirmationEnd = "2026-01-01T10:05:00Z"
    public var confirmationStart: String?
    public var notBefore = "2026-01-01T09:59:00Z"
    public var notOnOrAfter = "2026-01-01T10:05:00Z"
    public var nameID = "alice@example.test"
    public var email = "alice@example.test"
    public var groups = ["engineering", "hf-admins"]
    public var assertionID = "id-assertion-1"
    /// A second, unsigned assertion after the first (rule 3).
    public var extraAssertion = false

    public init() {}

    /// The shape addressed to `organization`'s ACS and audience.
    public static func forOrganization(_ organization: String) -> SAMLResponseShape {
        var shape = SAMLResponseShape()
        shape.destination = acs(organization)
        shape.recipient = acs(organization)
        shape.audience = entity(organization)
        return shape
    }

    public var xml: String {
        let irt = inResponseTo.map { " InResponseTo=\"\($0)\"" } ?? ""
        let dest = destination.map { " Destination=\"\($0)\"" } ?? ""
        // The first group value carries an xsi:type, as Okta writes them, so that the
        // assertion's signature needs the `xs` prefix listed (InclusiveNamespaces).
        let values = groups.enumerated().map { index, group in
            index == 0 ? "<saml:AttributeValue xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"xs:string\">\(group)</saml:AttributeValue>"
                : "<saml:AttributeValue>\(group)</saml:AttributeValue>"
        }.joined()
        let assertion = """
        <saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="\(assertionID)" Version="2.0" IssueInstant="2026-01-01T10:00:00Z">\
        <saml:Issuer>\(issuer)</saml:Issuer><saml:Subject>\
        <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">\(nameID)</saml:NameID>\
        <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData\(confirmationStart.map { " NotBefore=\"\($0)\"" } ?? "") NotOnOrAfter="\(confirmationEnd)" Recipient="\(recipient)"\(irt)/></saml:SubjectConfirmation>\
        </saml:Subject><saml:Conditions NotBefore="\(notBefore)" NotOnOrAfter="\(notOnOrAfter)"><saml:AudienceRestriction><saml:Audience>\(audience)</saml:Audience></saml:AudienceRestriction></saml:Conditions>\
        <saml:AuthnStatement AuthnInstant="2026-01-01T10:00:00Z" SessionIndex="session-1"/>\
        <saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>\(email)</saml:AttributeValue></saml:Attribute>\
        <saml:Attribute Name="groups">\(values)</saml:Attribute></saml:AttributeStatement></saml:Assertion>
        """
        let extra = extraAssertion ? "<saml:Assertion ID=\"id-evil\" Version=\"2.0\"><saml:Issuer>x</saml:Issuer></saml:Assertion>" : ""
        return """
        <samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-response-1" Version="2.0" IssueInstant="2026-01-01T10:00:00Z"\(dest)\(irt)>\
        <saml:Issuer>\(issuer)</saml:Issuer><samlp:Status><samlp:StatusCode Value="\(status)"/></samlp:Status>\(assertion)\(extra)</samlp:Response>
        """
    }

    public enum Signing: Sendable { case assertion, response, both, none }

    /// The IdP of the crypto fixture (`crypto/rsa-2048.key` and `.crt`).
    public static let key = try! PrivateKey(pem: Fixture.text("crypto/rsa-2048.key"))
    public static let certificate = try! X509Certificate.parseAll(pem: Fixture.text("crypto/rsa-2048.crt"))[0]

    /// The response, signed as `signing` says by `key` (the fixture IdP's by default).
    public func signed(_ signing: Signing = .both, key: PrivateKey = SAMLResponseShape.key,
                       certificate: X509Certificate = SAMLResponseShape.certificate) throws -> [UInt8] {
        XMLLibrary.initialize()
        let signer = SignatureSigner(key: key, certificate: certificate)
        var bytes = Array(xml.utf8)
        if signing == .assertion || signing == .both {
            bytes = try signer.sign(bytes, elementID: assertionID, inclusivePrefixes: ["xs"])
        }
        if signing == .response || signing == .both {
            bytes = try signer.sign(bytes, elementID: "id-response-1")
        }
        return bytes
    }
}
