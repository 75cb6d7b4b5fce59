import CryptoCore
import Foundation
import Testing
import XMLCore
@testable import SAML

@Suite("AuthnRequest and SP metadata")
struct AuthnRequestTests {
    static func request() -> AuthnRequest {
        AuthnRequest(destination: "https://acme.okta.com/app/x/sso/saml", acsURL: IdP.acs, spEntityID: IdP.entity,
                     issueInstant: IdP.now, random: { Array(repeating: 0xAB, count: 20) })
    }

    static func query(_ url: String) -> [String: String] {
        let comps = URLComponents(string: url)!
        return Dictionary(uniqueKeysWithValues: comps.percentEncodedQueryItems!.map { ($0.name, $0.value!.removingPercentEncoding!) })
    }

    /// Inflated by Python's zlib, an implementation independent of ours.
    static func inflate(_ base64: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import base64,sys,zlib;sys.stdout.write(zlib.decompress(base64.b64decode(sys.argv[1]),-15).decode())", base64]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func theRedirectCarriesADeflatedRequestThatAnotherInflaterReads() throws {
        let r = Self.request()
        #expect(r.id == "id-" + String(repeating: "ab", count: 20))
        let url = try r.redirectURL(to: "https://acme.okta.com/app/x/sso/saml", relayState: "/acme/private?x=1")
        #expect(url.hasPrefix("https://acme.okta.com/app/x/sso/saml?SAMLRequest="))
        let q = Self.query(url)
        #expect(q["RelayState"] == "/acme/private?x=1")
        let xml = try Self.inflate(q["SAMLRequest"]!)
        #expect(xml == r.xml)
        XMLLibrary.initialize()
        let doc = try XMLDocument.parse(Array(xml.utf8))
        #expect(doc.root.attribute("ID") == r.id)
        #expect(doc.root.attribute("AssertionConsumerServiceURL") == IdP.acs)
        #expect(doc.root.attribute("Destination") == "https://acme.okta.com/app/x/sso/saml")
        #expect(doc.root.attribute("ProtocolBinding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
        #expect(doc.root.attribute("IssueInstant") == "2026-01-01T10:01:00Z")
        #expect(doc.root.children[0].textContent == IdP.entity)
    }

    @Test func aSignOnURLWithAQueryGetsTheParametersAppended() throws {
        let url = try Self.request().redirectURL(to: "https://login.example/saml?tenant=1", relayState: nil)
        #expect(url.hasPrefix("https://login.example/saml?tenant=1&SAMLRequest="))
    }

    @Test func aSignedRedirectVerifiesOverTheExactQuery() throws {
        let url = try Self.request().redirectURL(to: "https://idp.example/sso", relayState: "/x", signingKey: IdP.key)
        let rawQuery = String(url.split(separator: "?", maxSplits: 1)[1])
        let signed = String(rawQuery[..<rawQuery.range(of: "&Signature=")!.lowerBound])
        let signature = Data(base64Encoded: Self.query(url)["Signature"]!)!
        #expect(Self.query(url)["SigAlg"] == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
        let key = try IdP.cert.publicKey()
        #expect(key.verify(signature: Array(signature), of: Array(signed.utf8), algorithm: .rsaSHA256))
        #expect(!key.verify(signature: Array(signature), of: Array((signed + "x").utf8), algorithm: .rsaSHA256))
    }

    @Test func storedDeflateBlocksSplitLargeInputs() throws {
        let big = Array(repeating: UInt8(ascii: "a"), count: 70_000)
        let deflated = AuthnRequest.rawDeflateStored(big)
        #expect(try Self.inflate(Data(deflated).base64EncodedString()).utf8.count == 70_000)
    }

    @Test func spMetadataNamesTheACSAndTheEntity() throws {
        XMLLibrary.initialize()
        let xml = SPMetadata.xml(entityID: IdP.entity, acsURL: IdP.acs, certificate: IdP.cert)
        let doc = try XMLDocument.parse(Array(xml.utf8))
        let md = "urn:oasis:names:tc:SAML:2.0:metadata"
        #expect(doc.root.attribute("entityID") == IdP.entity)
        let sp = doc.root.children(named: "SPSSODescriptor", in: md)[0]
        #expect(sp.attribute("WantAssertionsSigned") == "true" && sp.attribute("AuthnRequestsSigned") == "true")
        let acs = sp.children(named: "AssertionConsumerService", in: md)[0]
        #expect(acs.attribute("Location") == IdP.acs && acs.attribute("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
        #expect(sp.children(named: "NameIDFormat", in: md)[0].textContent == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")
        // One certificate, published for signing (AuthnRequests) and for encryption, with
        // the methods the gateway decrypts: never RSA-1_5.
        let descriptors = sp.children(named: "KeyDescriptor", in: md)
        #expect(descriptors.map { $0.attribute("use") } == ["signing", "encryption"])
        let methods = descriptors[1].children(named: "EncryptionMethod", in: md).compactMap { $0.attribute("Algorithm") }
        #expect(methods.first == "http://www.w3.org/2009/xmlenc11#aes256-gcm")
        #expect(methods.contains("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p") && methods.contains("http://www.w3.org/2001/04/xmlenc#aes128-cbc"))
        #expect(!methods.contains { $0.hasSuffix("rsa-1_5") })
        let unsigned = try XMLDocument.parse(Array(SPMetadata.xml(entityID: IdP.entity, acsURL: IdP.acs, certificate: nil).utf8))
        #expect(unsigned.root.children[0].children(named: "KeyDescriptor", in: md).isEmpty)
    }
}
