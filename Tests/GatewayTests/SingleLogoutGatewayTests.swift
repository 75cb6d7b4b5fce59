import Compression
import CryptoCore
import Foundation
@testable import Gateway
@testable import SAML
import StateStore
import TestFixtures
import TestSupport
import Testing
import XMLDSig

/// Single Logout over real sockets (docs/CONTRACT.md "Sessions, logout and Single Logout"):
/// an IdP's signed LogoutRequest ends the member's session on the gateway and is answered
/// with a signed LogoutResponse; unsigned, replayed and foreign ones end nothing; a logout
/// at the gateway sends the IdP a signed LogoutRequest and takes its answer.
@Suite("Single Logout over sockets", .serialized)
struct SingleLogoutGatewayTests {
    typealias API = SettingsAPITests
    static let idpKey = SSOFlowTests.fixture("rsa-2048.key")
    static let slo = "https://hub.example.test/organizations/acme/saml/slo"

    /// acme with an SP key pair and the IdP's Single Logout URL.
    static func start() async throws -> SSOFlowTests.Gateway {
        try await API.start { upstreamPort in
            """
            listen: "127.0.0.1:0"
            public_url: "https://hub.example.test"
            upstream: "http://127.0.0.1:\(upstreamPort)"
            session: {secrets: ["0123456789abcdef0123456789abcdef-test"]}
            store: memory
            protected_paths: ["/{org}/"]
            organizations:
              - name: acme
                saml: {enabled: true, sign_on_url: "https://idp.example.test/sso", certificate_file: "\(SSOFlowTests.fixture("rsa-2048.crt"))",
                       idp_entity_id: "http://www.okta.com/exk-test", slo_url: "https://idp.example.test/slo", slo_revokes_tokens: true,
                       sp_certificate_file: "\(Fixture.path("saml/keys/sp-rsa.crt"))", sp_private_key_file: "\(Fixture.path("saml/keys/sp-rsa.key"))"}
            """
        }
    }

    /// An IdP's LogoutRequest for `nameID`, signed by `key` (nil: unsigned), as a form body.
    static func logoutRequest(id: String = "id-slo-\(UUID().uuidString)", nameID: String = "alice@example.test", key: String? = idpKey) throws -> String {
        let xml = """
        <samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" \
        ID="\(id)" Version="2.0" IssueInstant="\(SAMLTime.format(SSOFlowTests.now))" Destination="\(slo)">\
        <saml:Issuer>http://www.okta.com/exk-test</saml:Issuer><saml:NameID>\(nameID)</saml:NameID></samlp:LogoutRequest>
        """
        var bytes = Array(xml.utf8)
        if let key {
            let signer = SignatureSigner(key: try PrivateKey(pem: String(contentsOfFile: key, encoding: .utf8)),
                                         certificate: try X509Certificate.parseAll(pem: String(contentsOfFile: key.replacingOccurrences(of: ".key", with: ".crt"),
                                                                                                     encoding: .utf8))[0])
            bytes = try signer.sign(bytes, elementID: id)
        }
        return SSOFlowTests.formBody(["SAMLRequest": Data(bytes).base64EncodedString(), "RelayState": "back-to-idp"])
    }

    static func post(_ g: SSOFlowTests.Gateway, _ body: String, cookie: String) async throws -> RawHTTPClient.Response {
        try await API.request(g, "POST /organizations/acme/saml/slo HTTP/1.1\r\nHost: hub.example.test\r\nCookie: \(cookie)\r\n"
                                 + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    @Test func anIdPsLogoutRequestEndsTheSessionAndIsAnsweredSigned() async throws {
        let g = try await Self.start()
        let cookie = try await SessionEndTests.logIn(g)
        let bob = try await SessionEndTests.logIn(g, nameID: "bob@example.test")
        let token = try TokenTests.token(try await TokenTests.make(g, cookie: cookie))
        #expect(try await TokenTests.get(g, "/acme/x", "Bearer \(token.text)").0 == 200)
        let body = try Self.logoutRequest()
        let answered = try await Self.post(g, body, cookie: cookie)
        #expect(answered.status == 302, "\(answered)")
        let location = try #require(answered.header("location"))
        #expect(location.hasPrefix("https://idp.example.test/slo?SAMLResponse="))
        #expect(location.contains("&RelayState=back-to-idp&SigAlg=") && location.contains("&Signature="))
        #expect(SSOFlowTests.cookie(answered, "ssogate_session")?.contains("Max-Age=0") == true, "this browser's grant is dropped")
        #expect(try await SessionEndTests.user(g, cookie) == nil, "the session ended (a copy of the cookie too)")
        #expect(try await SessionEndTests.user(g, bob) == "bob@example.test", "another member's did not")
        #expect(try await TokenTests.get(g, "/acme/x", "Bearer \(token.text)").0 == 401, "slo_revokes_tokens: her token ended too")
        // The answer is a LogoutResponse to that request, signed with the SP key.
        let query = String(location.split(separator: "?", maxSplits: 1)[1])
        let fields = try SingleLogout.rawFields(query)
        let xml = String(decoding: try RawDeflate.inflate(Base64.decode(SingleLogout.percentDecode(fields["SAMLResponse"]!)!)!), as: UTF8.self)
        #expect(xml.contains("<samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/>"))
        let spCertificate = try X509Certificate.parseAll(pem: Fixture.text("saml/keys/sp-rsa.crt"))[0]
        let signed = "SAMLResponse=\(fields["SAMLResponse"]!)&RelayState=\(fields["RelayState"]!)&SigAlg=\(fields["SigAlg"]!)"
        #expect(try spCertificate.publicKey().verify(signature: Base64.decode(SingleLogout.percentDecode(fields["Signature"]!)!)!,
                                                     of: Array(signed.utf8), algorithm: .rsaSHA256))

        // The same request again is a replay: refused, and it ends nothing more.
        let again = try await Self.post(g, body, cookie: bob)
        #expect(again.status == 403 && again.text.contains("logout_replayed"), "\(again.text)")
        #expect(try await SessionEndTests.user(g, bob) == "bob@example.test")
        let audit = try await g.harness.server.storeForTests.events(AuditQuery(organization: "acme", limit: 10, action: "sso.logout"))
        #expect(audit.contains { $0.result == "success" && $0.reason == "slo" && $0.subject == "alice@example.test" })
        #expect(audit.contains { $0.result == "failure" && $0.reason == "logout_replayed" })
        await SSOFlowTests().stop(g)
    }

    @Test func unsignedAndForeignLogoutRequestsEndNothing() async throws {
        let g = try await Self.start()
        let cookie = try await SessionEndTests.logIn(g)
        let unsigned = try await Self.post(g, try Self.logoutRequest(key: nil), cookie: cookie)
        #expect(unsigned.status == 403 && unsigned.text.contains("signature_missing"))
        let foreign = try await Self.post(g, try Self.logoutRequest(key: Fixture.path("saml/keys/attacker-rsa.key")), cookie: cookie)
        #expect(foreign.status == 403 && foreign.text.contains("signature_invalid"))
        #expect(try await SessionEndTests.user(g, cookie) == "alice@example.test", "still logged in")
        await SSOFlowTests().stop(g)
    }

    @Test func aLogoutHereTellsTheIdPAndTakesItsAnswer() async throws {
        let g = try await Self.start()
        let metadata = try await API.request(g, "GET /organizations/acme/saml/metadata HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(metadata.text.contains("<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"\(Self.slo)\"/>"))
        let cookie = try await SessionEndTests.logIn(g)
        let out = try await SessionEndTests.logout(g, cookie, headers: "Sec-Fetch-Site: same-origin\r\n")
        #expect(out.status == 303, "\(out)")
        let location = try #require(out.header("location"))
        #expect(location.hasPrefix("https://idp.example.test/slo?SAMLRequest=") && location.contains("&Signature="))
        let state = "ssogate_session_logout=" + SSOFlowTests.value(try #require(SSOFlowTests.cookie(out, "ssogate_session_logout")))
        #expect(try await SessionEndTests.user(g, cookie) == nil, "ended here before the IdP answers")
        let fields = try SingleLogout.rawFields(String(location.split(separator: "?", maxSplits: 1)[1]))
        let request = String(decoding: try RawDeflate.inflate(Base64.decode(SingleLogout.percentDecode(fields["SAMLRequest"]!)!)!), as: UTF8.self)
        let id = String(request[request.range(of: "ID=\"")!.upperBound...].prefix { $0 != "\"" })
        #expect(request.contains("<samlp:SessionIndex>"), "the grant's SessionIndex is named")

        func answer(_ inResponseTo: String) throws -> String {
            let xml = """
            <samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" \
            ID="id-r" Version="2.0" IssueInstant="\(SAMLTime.format(SSOFlowTests.now))" Destination="\(Self.slo)" InResponseTo="\(inResponseTo)">\
            <saml:Issuer>http://www.okta.com/exk-test</saml:Issuer><samlp:Status><samlp:StatusCode Value="\(SingleLogout.success)"/></samlp:Status>\
            </samlp:LogoutResponse>
            """
            let url = try SingleLogout.signedRedirect(to: "https://x/", parameter: "SAMLResponse", xml: xml, relayState: nil,
                                                      key: try PrivateKey(pem: String(contentsOfFile: Self.idpKey, encoding: .utf8)))
            return String(url.split(separator: "?", maxSplits: 1)[1])
        }
        let done = try await API.request(g, "GET /organizations/acme/saml/slo?\(try answer(id)) HTTP/1.1\r\nHost: hub.example.test\r\nCookie: \(state)\r\n\r\n")
        #expect(done.status == 200 && done.text.contains("data-result=\"success\""), "\(done.text)")
        // Without this browser's logout state, the answer is not taken as the IdP's word.
        let stray = try await API.request(g, "GET /organizations/acme/saml/slo?\(try answer(id)) HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
        #expect(stray.text.contains("data-result=\"in_response_to_unknown\""))
        await SSOFlowTests().stop(g)
    }
}
