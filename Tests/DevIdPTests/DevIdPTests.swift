import CryptoCore
import DevIdP
import Foundation
import SAML
import Testing
import XMLCore
import XMLDSig

private let sp = DevServiceProvider(entityID: "http://127.0.0.1:9000/organizations/acme/saml/metadata",
                                    acsURL: "http://127.0.0.1:9000/organizations/acme/saml/consume",
                                    landing: "/acme/private-model")

private func validator(_ idp: DevIdP, idpInitiated: Bool = false) throws -> ResponseValidator {
    let settings = ServiceProviderSettings(entityID: sp.entityID, acsURL: sp.acsURL, idpEntityID: idp.entityID,
                                           trusted: [try TrustedKey(certificate: idp.identity.certificate)],
                                           allowInsecureSHA1: false, allowIdPInitiated: idpInitiated, clockSkew: 60)
    return ResponseValidator(settings: settings, replayCache: MemoryReplayCache())
}

/// The value of `<input ... name="NAME" value="...">` in an HTML page, unescaped.
private func field(_ name: String, in html: String) -> String? {
    guard let start = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
    let rest = html[start.upperBound...]
    guard let end = rest.firstIndex(of: "\"") else { return nil }
    return String(rest[..<end]).replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
        .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&#39;", with: "'")
        .replacingOccurrences(of: "&amp;", with: "&")
}

private func query(of url: String) -> [String: String] {
    var out: [String: String] = [:]
    for pair in URLComponents(string: url)?.queryItems ?? [] { out[pair.name] = pair.value }
    return out
}

@Suite("development IdP")
struct DevIdPTests {
    @Test func itsResponsesPassTheGatewaysValidator() throws {
        let idp = try DevIdP(baseURL: "http://127.0.0.1:9001", serviceProviders: [sp])
        let response = try idp.signedResponse(for: DevUser.defaults[0], sp: sp, inResponseTo: "id-request-1")
        let result = try validator(idp).validate(samlResponse: response, expectedRequestID: "id-request-1")
        #expect(result.nameID == "alice@example.test")
        #expect(result.attributes["groups"] == ["hf-admins", "engineering"])
        #expect(result.verifiedBy == idp.identity.certificate.sha256Fingerprint)
    }

    @Test func spInitiatedLoginAnswersTheRequestWithTheChosenUser() throws {
        let idp = try DevIdP(baseURL: "http://127.0.0.1:9001", serviceProviders: [sp])
        let request = AuthnRequest(destination: idp.ssoURL, acsURL: sp.acsURL, spEntityID: sp.entityID,
                                   issueInstant: Date(), random: { Array(repeating: 7, count: 20) })
        let redirect = try request.redirectURL(to: idp.ssoURL, relayState: "opaque-relay")
        let loginPage = idp.handle(method: "GET", path: "/sso", query: query(of: redirect), form: [:])
        #expect(loginPage.status == 200)
        #expect(loginPage.body.contains("login-bob") && loginPage.body.contains("login-alice"))

        let form = ["user": "bob", "sp": sp.entityID, "request": request.id, "relay": "opaque-relay"]
        let post = idp.handle(method: "POST", path: "/login", query: [:], form: form)
        #expect(post.status == 200)
        #expect(post.body.contains("action=\"\(sp.acsURL)\""))
        #expect(field("RelayState", in: post.body) == "opaque-relay")
        let samlResponse = try #require(field("SAMLResponse", in: post.body))
        let result = try validator(idp).validate(samlResponse: samlResponse, expectedRequestID: request.id)
        #expect(result.nameID == "bob@example.test" && result.attributes["groups"] == ["viewers"])
    }

    @Test func theTilePageStartsAnIdPInitiatedLogin() throws {
        let idp = try DevIdP(baseURL: "http://127.0.0.1:9001", serviceProviders: [sp])
        let tiles = idp.handle(method: "GET", path: "/", query: [:], form: [:])
        #expect(tiles.body.contains("tile-carol"))
        let post = idp.handle(method: "POST", path: "/login", query: [:],
                              form: ["user": "carol", "sp": sp.entityID, "relay": sp.landing])
        let samlResponse = try #require(field("SAMLResponse", in: post.body))
        #expect(field("RelayState", in: post.body) == sp.landing)
        let result = try validator(idp, idpInitiated: true).validate(samlResponse: samlResponse, expectedRequestID: nil)
        #expect(result.inResponseTo == nil && result.nameID == "carol@example.test")
        // A gateway that does not accept IdP-initiated logins refuses the same response.
        #expect(throws: SAMLError.self) {
            try validator(idp).validate(samlResponse: samlResponse, expectedRequestID: nil)
        }
    }

    @Test func requestsFromUnknownServiceProvidersAreRefused() throws {
        let idp = try DevIdP(baseURL: "http://127.0.0.1:9001", serviceProviders: [sp])
        let stranger = AuthnRequest(destination: idp.ssoURL, acsURL: "http://evil.test/acs", spEntityID: "http://evil.test/sp",
                                    issueInstant: Date(), random: { Array(repeating: 1, count: 20) })
        let page = idp.handle(method: "GET", path: "/sso", query: query(of: try stranger.redirectURL(to: idp.ssoURL, relayState: nil)), form: [:])
        #expect(page.status == 400)
        // A known issuer asking for a different ACS is refused too: responses go only where configured.
        let redirected = AuthnRequest(destination: idp.ssoURL, acsURL: "http://evil.test/acs", spEntityID: sp.entityID,
                                      issueInstant: Date(), random: { Array(repeating: 2, count: 20) })
        #expect(idp.handle(method: "GET", path: "/sso", query: query(of: try redirected.redirectURL(to: idp.ssoURL, relayState: nil)),
                           form: [:]).status == 400)
        #expect(idp.handle(method: "POST", path: "/login", query: [:], form: ["user": "nobody", "sp": sp.entityID]).status == 400)
    }

    @Test func metadataCarriesTheSigningCertificateAndSSOLocation() throws {
        let idp = try DevIdP(baseURL: "http://127.0.0.1:9001", serviceProviders: [sp])
        let parsed = try IdPMetadata.parse(Array(idp.metadata().utf8))
        #expect(parsed.entityID == idp.entityID && parsed.redirectSSOURL == idp.ssoURL)
        #expect(parsed.signingCertificates.map(\.sha256Fingerprint) == [idp.identity.certificate.sha256Fingerprint])
    }
}
