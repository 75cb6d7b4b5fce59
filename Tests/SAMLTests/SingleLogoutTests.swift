import Compression
import CryptoCore
import Foundation
import Testing
import TestFixtures
import XMLCore
import XMLDSig
@testable import SAML

/// Single Logout messages (docs/CONTRACT.md "Sessions, logout and Single Logout"): an IdP's
/// LogoutRequest signed by Debian's xmlsec1 (HTTP-POST) or over its query (HTTP-Redirect)
/// is accepted; unsigned, foreign-signed, wrapped, tampered, stale, misaddressed or
/// misissued ones are refused with their reason; and what the gateway sends is signed.
@Suite("Single Logout messages")
struct SingleLogoutTests {
    static let now = Date(timeIntervalSince1970: 1_767_261_660)
    static let slo = "https://hub.example.test/organizations/acme/saml/slo"
    static let idp = "http://www.okta.com/exk-test"
    static func key(_ name: String) -> String { Fixture.path("saml/keys/\(name)") }

    static func checks(sha1: Bool = false) throws -> SingleLogout {
        let certificate = try X509Certificate.parseAll(pem: Fixture.text("saml/keys/idp-rsa.crt"))[0]
        let settings = ServiceProviderSettings(entityID: "https://hub.example.test/organizations/acme/saml/metadata",
                                               acsURL: "https://hub.example.test/organizations/acme/saml/consume", idpEntityID: idp,
                                               trusted: [try TrustedKey(certificate: certificate)], allowInsecureSHA1: sha1,
                                               allowIdPInitiated: false, clockSkew: 60)
        return SingleLogout(settings: settings, sloURL: slo, clock: { now })
    }

    static func request(id: String = "id-logout-1", issuer: String = idp, destination: String = slo, issued: Date = now,
                        notOnOrAfter: Date? = nil, nameID: String = "alice@example.test", indexes: [String] = ["idx-1"],
                        signature: String = "") -> String {
        """
        <samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" \
        ID="\(id)" Version="2.0" IssueInstant="\(SAMLTime.format(issued))" Destination="\(destination)"\
        \(notOnOrAfter.map { " NotOnOrAfter=\"\(SAMLTime.format($0))\"" } ?? "")>\
        <saml:Issuer>\(issuer)</saml:Issuer>\(signature)<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">\(nameID)</saml:NameID>\
        \(indexes.map { "<samlp:SessionIndex>\($0)</samlp:SessionIndex>" }.joined())</samlp:LogoutRequest>
        """
    }

    /// An enveloped-signature template for xmlsec1 to fill, referencing `id`.
    static func template(_ id: String) -> String {
        """
        <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>\
        <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>\
        <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>\
        <ds:Reference URI="#\(id)"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>\
        <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>\
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>\
        <ds:SignatureValue/></ds:Signature>
        """
    }

    /// `xml` (holding a template) signed by Debian's xmlsec1 with `key`.
    static func xmlsecSigned(_ xml: String, key: String = "idp-rsa") throws -> String {
        let folder = NSTemporaryDirectory() + "ssogate-slo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data(xml.utf8).write(to: URL(fileURLWithPath: folder + "/in.xml"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/xmlsec1")
        process.arguments = ["--sign", "--privkey-pem", "\(Self.key(key + ".key")),\(Self.key(key + ".crt"))",
                             "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest",
                             "--output", folder + "/out.xml", folder + "/in.xml"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "xmlsec1 --sign")
        return try String(contentsOfFile: folder + "/out.xml", encoding: .utf8)
    }

    static func post(_ xml: String) -> ReceivedSAMLMessage { .post(form: ["SAMLRequest": Data(xml.utf8).base64EncodedString()]) }

    static func refusal(_ message: ReceivedSAMLMessage, _ checks: SingleLogout? = nil) throws -> String? {
        let checks = try checks ?? Self.checks()
        do {
            _ = try checks.request(message)
            return nil
        } catch {
            return error.code
        }
    }

    // MARK: - HTTP-POST, signed by xmlsec1

    @Test func aRequestSignedByTheIdPNamesWhoseSessionsEnd() throws {
        let signed = try Self.xmlsecSigned(Self.request(indexes: ["idx-1", "idx-2"], signature: Self.template("id-logout-1")))
        let (request, spend) = try Self.checks().request(Self.post(signed))
        #expect(request.nameID == "alice@example.test" && request.sessionIndexes == ["idx-1", "idx-2"] && request.issuer == Self.idp)
        #expect(spend.id == "logout:id-logout-1" && spend.refusal.code == "logout_replayed")
    }

    @Test func unsignedForeignTamperedAndWrappedRequestsAreRefused() throws {
        #expect(try Self.refusal(Self.post(Self.request())) == "signature_missing")
        let foreign = try Self.xmlsecSigned(Self.request(signature: Self.template("id-logout-1")), key: "attacker-rsa")
        #expect(try Self.refusal(Self.post(foreign)) == "signature_invalid")
        let signed = try Self.xmlsecSigned(Self.request(signature: Self.template("id-logout-1")))
        let tampered = signed.replacingOccurrences(of: ">alice@example.test<", with: ">bob@example.test<")
        #expect(try Self.refusal(Self.post(tampered)).map { ["digest_mismatch", "signature_invalid"].contains($0) } == true)
        // Wrapping: the signed request hidden in Extensions, a forged one around it carrying
        // the original's Signature (which references the hidden one).
        let signature = String(signed[signed.range(of: "<ds:Signature")!.lowerBound..<signed.range(of: "</ds:Signature>")!.upperBound])
        let inner = signed.replacingOccurrences(of: signature, with: "")
        let hidden = String(inner[inner.range(of: "<samlp:LogoutRequest")!.lowerBound...])
        let wrapped = Self.request(id: "id-evil", nameID: "bob@example.test", signature: signature + "<samlp:Extensions>\(hidden)</samlp:Extensions>")
        #expect(try Self.refusal(Self.post(wrapped)) != nil, "a wrapped request ends nothing")
    }

    @Test func staleMisaddressedAndMisissuedRequestsAreRefused() throws {
        func signed(_ xml: (String) -> String) throws -> ReceivedSAMLMessage { Self.post(try Self.xmlsecSigned(xml(Self.template("id-logout-1")))) }
        #expect(try Self.refusal(signed { Self.request(issued: Self.now.addingTimeInterval(-600), signature: $0) }) == "expired")
        #expect(try Self.refusal(signed { Self.request(issued: Self.now.addingTimeInterval(300), signature: $0) }) == "not_yet_valid")
        // NotOnOrAfter: passed (beyond the 60 s skew) is refused; within the skew, or ahead, is not.
        #expect(try Self.refusal(signed { Self.request(notOnOrAfter: Self.now.addingTimeInterval(-61), signature: $0) }) == "expired")
        #expect(try Self.refusal(signed { Self.request(notOnOrAfter: Self.now.addingTimeInterval(-30), signature: $0) }) == nil)
        #expect(try Self.refusal(signed { Self.request(notOnOrAfter: Self.now.addingTimeInterval(300), signature: $0) }) == nil)
        #expect(try Self.refusal(signed { Self.request(destination: "https://hub.example.test/organizations/globex/saml/slo", signature: $0) })
                == "destination_mismatch")
        #expect(try Self.refusal(signed { Self.request(issuer: "http://www.okta.com/other", signature: $0) }) == "issuer_mismatch")
        let doctype = "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>" + Self.request()
        #expect(try Self.refusal(Self.post(doctype)) == "dtd_forbidden")
    }

    // MARK: - HTTP-Redirect, signed over the query

    static func redirectQuery(_ xml: String, key: String = "idp-rsa", algorithm: SignatureAlgorithm = .rsaSHA256, relayState: String? = "r1") throws -> String {
        let pem = try Fixture.text("saml/keys/\(key).key")
        let url = try SingleLogout.signedRedirect(to: "https://x/", parameter: "SAMLRequest", xml: xml, relayState: relayState, key: nil)
        var query = String(url.split(separator: "?", maxSplits: 1)[1])
        query += "&SigAlg=" + AuthnRequest.percentEncode(SignatureMethod.uri(of: algorithm))
        let signature = try PrivateKey(pem: pem).sign(Array(query.utf8), algorithm: algorithm)
        return query + "&Signature=" + AuthnRequest.percentEncode(Data(signature).base64EncodedString())
    }

    @Test func aRedirectRequestIsCheckedByItsQuerySignature() throws {
        let query = try Self.redirectQuery(Self.request())
        #expect(try Self.checks().request(.redirect(query: query)).0.nameID == "alice@example.test")
        // Another request under the same signature, no signature, a foreign key, SHA-1, a field twice.
        let other = try Self.redirectQuery(Self.request(nameID: "bob@example.test"))
        let swapped = other.split(separator: "&").first { $0.hasPrefix("SAMLRequest=") }! + "&" + query.split(separator: "&").dropFirst().joined(separator: "&")
        #expect(try Self.refusal(.redirect(query: String(swapped))) == "signature_invalid")
        #expect(try Self.refusal(.redirect(query: String(query.prefix { $0 != "&" }))) == "signature_missing")
        #expect(try Self.refusal(.redirect(query: try Self.redirectQuery(Self.request(), key: "attacker-rsa"))) == "signature_invalid")
        #expect(try Self.refusal(.redirect(query: try Self.redirectQuery(Self.request(), algorithm: .insecureRSASHA1))) == "algorithm_not_allowed")
        #expect(try Self.refusal(.redirect(query: try Self.redirectQuery(Self.request(), algorithm: .insecureRSASHA1)), Self.checks(sha1: true)) == nil,
                "SHA-1 only with allow_sha1")
        #expect(try Self.refusal(.redirect(query: query + "&RelayState=again")) == "malformed")
        // The RelayState is signed too.
        let relay = query.replacingOccurrences(of: "RelayState=r1", with: "RelayState=r2")
        #expect(try Self.refusal(.redirect(query: relay)) == "signature_invalid")
    }

    // MARK: - What the gateway sends, and the answer it takes

    @Test func theGatewaysLogoutRequestIsSignedAndItsResponseMustAnswerIt() throws {
        let spKey = try PrivateKey(pem: Fixture.text("saml/keys/sp-rsa.key"))
        let (url, id) = try SingleLogout.requestURL(to: "https://idp.example.test/slo", issuer: "https://hub.example.test/organizations/acme/saml/metadata",
                                                    nameID: "alice@example.test", nameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                                                    sessionIndex: "idx-9", relayState: nil, key: spKey, now: Self.now, random: { Array(repeating: 7, count: 20) })
        let query = String(url.split(separator: "?", maxSplits: 1)[1])
        let fields = try SingleLogout.rawFields(query)
        let signed = "SAMLRequest=\(fields["SAMLRequest"]!)&SigAlg=\(fields["SigAlg"]!)"
        let spCertificate = try X509Certificate.parseAll(pem: Fixture.text("saml/keys/sp-rsa.crt"))[0]
        #expect(try spCertificate.publicKey().verify(signature: Base64.decode(SingleLogout.percentDecode(fields["Signature"]!)!)!, of: Array(signed.utf8),
                                                     algorithm: .rsaSHA256))
        let xml = String(decoding: try RawDeflate.inflate(Base64.decode(SingleLogout.percentDecode(fields["SAMLRequest"]!)!)!), as: UTF8.self)
        #expect(xml.contains("ID=\"\(id)\"") && xml.contains(">alice@example.test</saml:NameID>") && xml.contains("<samlp:SessionIndex>idx-9<"))
        #expect(xml.contains("Destination=\"https://idp.example.test/slo\""))

        func answer(_ inResponseTo: String, status: String = SingleLogout.success) throws -> ReceivedSAMLMessage {
            let response = """
            <samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" \
            ID="id-r" Version="2.0" IssueInstant="\(SAMLTime.format(Self.now))" Destination="\(Self.slo)" InResponseTo="\(inResponseTo)">\
            <saml:Issuer>\(Self.idp)</saml:Issuer><samlp:Status><samlp:StatusCode Value="\(status)"/></samlp:Status></samlp:LogoutResponse>
            """
            let url = try SingleLogout.signedRedirect(to: "https://x/", parameter: "SAMLResponse", xml: response, relayState: nil,
                                                      key: try PrivateKey(pem: Fixture.text("saml/keys/idp-rsa.key")))
            return .redirect(query: String(url.split(separator: "?", maxSplits: 1)[1]))
        }
        #expect(try Self.checks().response(answer(id), expectedRequestID: id).succeeded)
        #expect(try !Self.checks().response(answer(id, status: "urn:oasis:names:tc:SAML:2.0:status:Requester"), expectedRequestID: id).succeeded)
        #expect(throws: SAMLError("in_response_to_unknown", "")) { try Self.checks().response(answer("id-other"), expectedRequestID: id) }
        #expect(throws: SAMLError("in_response_to_unknown", "")) { try Self.checks().response(answer(id), expectedRequestID: nil) }
    }
}
