import CryptoCore
import Foundation
import Testing
import TestFixtures
import XMLCore
@testable import XMLDSig

enum Keys {
    static func fixture(_ name: String) -> String { Fixture.path("crypto/\(name)") }
    static func text(_ name: String) -> String { try! String(contentsOfFile: fixture(name), encoding: .utf8) }
    static let rsaCert = try! X509Certificate.parseAll(pem: text("rsa-2048.crt"))[0]
    static let rsaKey = try! PrivateKey(pem: text("rsa-2048.key"))
    static let ecCert = try! X509Certificate.parseAll(pem: text("ec-p256.crt"))[0]
    static let ecKey = try! PrivateKey(pem: text("ec-p256.key"))
    static let otherCert = try! X509Certificate.parseAll(pem: text("test-idp.pem"))[0]
}

/// An Okta-shaped assertion inside a response (xs declared on the Assertion, as Okta does).
let response = """
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-response-1" Version="2.0"><saml:Issuer>http://www.okta.com/exk-test</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="id-assertion-1" Version="2.0"><saml:Issuer>http://www.okta.com/exk-test</saml:Issuer><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">alice@example.test</saml:NameID></saml:Subject><saml:AttributeStatement><saml:Attribute Name="groups"><saml:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">engineering</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>
"""

func assertion(in bytes: [UInt8]) throws -> XMLElement {
    XMLLibrary.initialize()
    let doc = try XMLDocument.parse(bytes)
    // Chosen by structure, as the SAML layer does: the Assertion child of the Response.
    return doc.root.children(named: "Assertion", in: "urn:oasis:names:tc:SAML:2.0:assertion")[0]
}

func signAssertion(_ xml: String = response, key: PrivateKey = Keys.rsaKey, cert: X509Certificate = Keys.rsaCert,
                   algorithm: SignatureAlgorithm? = nil) throws -> [UInt8] {
    XMLLibrary.initialize()
    return try SignatureSigner(key: key, certificate: cert, algorithm: algorithm)
        .sign(Array(xml.utf8), elementID: "id-assertion-1", inclusivePrefixes: ["xs"])
}

func verifier(_ certs: X509Certificate..., sha1: Bool = false) throws -> SignatureVerifier {
    SignatureVerifier(trusted: try certs.map { try TrustedKey(certificate: $0) }, allowInsecureSHA1: sha1)
}

func edited(_ bytes: [UInt8], _ from: String, _ to: String) -> [UInt8] {
    let text = String(decoding: bytes, as: UTF8.self)
    precondition(text.contains(from), "fixture edit did not apply: \(from)")
    return Array(text.replacingOccurrences(of: from, with: to).utf8)
}

@Suite("XML-DSig: accept and reject")
struct SignatureTests {
    @Test func aSignedAssertionVerifiesAndOnlyTheSignedBytesComeBack() throws {
        let signed = try signAssertion()
        let result = try verifier(Keys.otherCert, Keys.rsaCert).verify(try assertion(in: signed))
        #expect(result.verifiedBy.sha256Fingerprint == Keys.rsaCert.sha256Fingerprint)
        #expect(result.element.localName == "Assertion")
        // The returned element is a document of its own, without the Signature.
        #expect(result.element.children(named: "Signature", in: DSigURI.namespace).isEmpty)
        #expect(result.element.parent == nil)
        #expect(result.element.children[1].textContent == "alice@example.test")
    }

    @Test func anECDSASignedAssertionVerifies() throws {
        let signed = try signAssertion(key: Keys.ecKey, cert: Keys.ecCert)
        #expect(try verifier(Keys.ecCert).verify(try assertion(in: signed)).algorithm == .ecdsaSHA256)
    }

    @Test func aValueChangedAfterSigningIsADigestMismatch() throws {
        let signed = edited(try signAssertion(), ">alice@example.test<", ">mallory@example.test<")
        #expect(throws: DSigError.digestMismatch) { try verifier(Keys.rsaCert).verify(try assertion(in: signed)) }
    }

    @Test func aSignatureByAnotherKeyIsInvalidWhateverKeyInfoSays() throws {
        // Signed with the RSA key and its certificate in KeyInfo; only otherCert is configured.
        #expect(throws: DSigError.signatureInvalid) { try verifier(Keys.otherCert).verify(try assertion(in: try signAssertion())) }
    }

    @Test func aStrippedSignatureIsMissing() throws {
        #expect(throws: DSigError.signatureMissing) { try verifier(Keys.rsaCert).verify(try assertion(in: Array(response.utf8))) }
    }

    @Test func rsaSHA1IsRefusedUnlessOptedIn() throws {
        let signed = try signAssertion(algorithm: .insecureRSASHA1)
        #expect(throws: DSigError.algorithmNotAllowed) { try verifier(Keys.rsaCert).verify(try assertion(in: signed)) }
        _ = try verifier(Keys.rsaCert, sha1: true).verify(try assertion(in: signed))
    }

    @Test func aDuplicatedIDIsAReferenceMismatch() throws {
        let signed = edited(try signAssertion(), "<saml:Issuer>http://www.okta.com/exk-test</saml:Issuer><samlp:Status>",
                            "<saml:Issuer>http://www.okta.com/exk-test</saml:Issuer><x ID=\"id-assertion-1\"/><samlp:Status>")
        #expect(throws: DSigError.referenceMismatch) { try verifier(Keys.rsaCert).verify(try assertion(in: signed)) }
    }

    @Test func anObjectInsideTheSignatureIsRefused() throws {
        let signed = edited(try signAssertion(), "</ds:KeyInfo>", "</ds:KeyInfo><ds:Object><x/></ds:Object>")
        #expect(throws: DSigError.malformed) { try verifier(Keys.rsaCert).verify(try assertion(in: signed)) }
    }

    @Test func aReferenceToAnotherElementIsRefused() throws {
        // SignedInfo's shape is checked before its signature: a Reference to another
        // element is refused for what it is, without canonicalizing or verifying anything.
        let signed = edited(try signAssertion(), "URI=\"#id-assertion-1\"", "URI=\"#id-response-1\"")
        #expect(throws: DSigError.referenceMismatch) { try verifier(Keys.rsaCert).verify(try assertion(in: signed)) }
    }

    @Test func aSignatureOnTheParentDoesNotMakeTheChildSigned() throws {
        XMLLibrary.initialize()
        let signed = try SignatureSigner(key: Keys.rsaKey, certificate: Keys.rsaCert)
            .sign(Array(response.utf8), elementID: "id-response-1")
        #expect(throws: DSigError.signatureMissing) { try verifier(Keys.rsaCert).verify(try assertion(in: signed)) }
        let doc = try XMLDocument.parse(signed)
        _ = try verifier(Keys.rsaCert).verify(doc.root)
    }
}

/// Our signer checked by an independent implementation: Debian's xmlsec1.
@Suite("XML-DSig: our signatures verify under xmlsec1")
struct XmlsecCrossCheckTests {
    func xmlsecVerifies(_ bytes: [UInt8], cert: String) throws -> Bool {
        let path = NSTemporaryDirectory() + "ssogate-signed-\(UUID().uuidString).xml"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/xmlsec1")
        process.arguments = ["--verify", "--pubkey-cert-pem", Keys.fixture(cert),
                             "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                             "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response", path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    @Test func rsaSHA256() throws { #expect(try xmlsecVerifies(signAssertion(), cert: "rsa-2048.crt")) }
    @Test func ecdsaSHA256() throws { #expect(try xmlsecVerifies(signAssertion(key: Keys.ecKey, cert: Keys.ecCert), cert: "ec-p256.crt")) }
    @Test func aTamperedOneDoesNot() throws {
        #expect(try !xmlsecVerifies(edited(signAssertion(), ">alice@", ">mallory@"), cert: "rsa-2048.crt"))
    }
}

@Suite("XML-DSig: base64")
struct Base64Tests {
    @Test func wrappedValuesDecodeWhateverTheLineEnds() {
        #expect(SignatureVerifier.base64("QUJD\r\nREVG") == Array("ABCDEF".utf8))
        #expect(SignatureVerifier.base64("QUJD\nREVG\n") == Array("ABCDEF".utf8))
        #expect(SignatureVerifier.base64(" QUJD\tREVG ") == Array("ABCDEF".utf8))
        #expect(SignatureVerifier.base64("QUJD*REVG") == nil)
        #expect(SignatureVerifier.base64("") == nil)
    }
}
