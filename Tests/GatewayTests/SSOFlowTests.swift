@testable import Access
import Compression
import Config
import CryptoCore
import Foundation
@testable import Gateway
import Logging
import NIOCore
import NIOPosix
@testable import Proxy
import TestFixtures
import TestSupport
import Testing
import XMLCore
import XMLDSig

/// The login flow end to end over real sockets: the gateway in this process with its clock
/// pinned, the test upstream behind it, and IdP responses signed by our signer (itself
/// checked against xmlsec1 in XMLDSigTests).
@Suite("SSO flow over sockets")
struct SSOFlowTests {
    static let now = Date(timeIntervalSince1970: 1_767_261_660)  // 2026-01-01T10:01:00Z
    static func fixture(_ name: String) -> String { Fixture.path("crypto/\(name)") }

    struct Gateway {
        let harness: Harness
        let upstream: TestUpstream
    }

    /// - Parameters: `upstreamPort` another upstream than the test upstream; `clock` the
    ///   time the gateway judges assertions and sessions at (pinned to `now` by default).
    static func start(upstreamPort: Int? = nil, clock: @escaping @Sendable () -> Date = { now }, extra: String = "",
                      session: String = "") async throws -> Gateway {
        XMLLibrary.initialize()
        let upstream = try await TestUpstream.start()
        let configuration = try ConfigLoader.load(yaml: yaml(upstreamPort: upstreamPort ?? upstream.port, extra: extra, session: session),
                                                  environment: [:], baseDirectory: ".")
        let logs = CapturedLogs()
        let accessLogs = CapturedLogs()
        let server = GatewayServer(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                                   logger: Logger(label: "t") { _ in CapturingLogHandler(sink: logs) },
                                   accessLogger: Logger(label: "a") { _ in CapturingLogHandler(sink: accessLogs) },
                                   clock: clock)
        let address = try await server.start()
        return Gateway(harness: Harness(server: server, port: address.port!, logs: logs, accessLogs: accessLogs), upstream: upstream)
    }

    /// acme (role mapping), globex (redirect mode), dormant (SSO disabled); `acme` and
    /// `dormant` say whether those two are enabled (a reload flips them).
    /// - Parameter session: more keys of `session` (`, idle_timeout: 5m`).
    static func yaml(upstreamPort: Int, extra: String = "", acme: Bool = true, dormant: Bool = false, session: String = "") -> String {
        """
        listen: "127.0.0.1:0"
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:\(upstreamPort)"
        session: {secrets: ["0123456789abcdef0123456789abcdef-test"]\(session)}
        protected_paths: ["/{org}/"]
        organizations:
          - name: acme
            saml: {enabled: \(acme), sign_on_url: "https://idp.example.test/sso", certificate_file: "\(fixture("rsa-2048.crt"))",
                   idp_entity_id: "http://www.okta.com/exk-test"}
            role_mapping: {attribute: groups, rules: [{value: engineering, role: write}, {value: hf-admins, role: admin}]}
          - name: globex
            unauthenticated: redirect
            app_credentials: pass
            saml: {enabled: true, sign_on_url: "https://idp.example.test/sso", certificate_file: "\(fixture("rsa-2048.crt"))",
                   allow_idp_initiated: true}
          - name: dormant
            saml: {enabled: \(dormant), sign_on_url: "https://idp.example.test/sso", certificate_file: "\(fixture("rsa-2048.crt"))",
                   allow_idp_initiated: true}
        \(Harness.memoryUnlessGiven(extra))
        \(extra)
        """
    }

    func stop(_ g: Gateway) async {
        await g.harness.stop()
        await g.upstream.stop()
    }

    /// The AuthnRequest ID inside a redirect Location (stored-block DEFLATE, one block).
    static func requestID(in location: String) throws -> String {
        let query = URLComponents(string: location)!.percentEncodedQueryItems!
        let encoded = try #require(query.first { $0.name == "SAMLRequest" }?.value?.removingPercentEncoding)
        let deflated = Array(try #require(Data(base64Encoded: encoded)))
        let xml = String(decoding: deflated.dropFirst(5), as: UTF8.self)
        let start = try #require(xml.range(of: "ID=\""))
        return String(xml[start.upperBound...].prefix { $0 != "\"" })
    }

    static func cookie(_ response: RawHTTPClient.Response, _ name: String) -> String? {
        response.values("set-cookie").first { $0.hasPrefix(name + "=") }
    }

    static func value(_ setCookie: String) -> String {
        String(setCookie.split(separator: ";")[0].split(separator: "=", maxSplits: 1)[1])
    }

    /// A response of the fixture IdP for `org`, its assertion signed, as the form field.
    /// - Parameter signer: PEM paths of the IdP key and certificate (the crypto fixture by default).
    static func samlResponse(inResponseTo: String?, assertionID: String = "id-assertion-1", org: String = "acme",
                             nameID: String = "alice@example.test", groups: [String] = ["engineering", "hf-admins"],
                             signer: (key: String, certificate: String) = (fixture("rsa-2048.key"), fixture("rsa-2048.crt"))) throws -> String {
        var shape = SAMLResponseShape.forOrganization(org)
        shape.inResponseTo = inResponseTo
        shape.assertionID = assertionID
        shape.nameID = nameID
        shape.groups = groups
        let key = try PrivateKey(pem: String(contentsOfFile: signer.key, encoding: .utf8))
        let cert = try X509Certificate.parseAll(pem: String(contentsOfFile: signer.certificate, encoding: .utf8))[0]
        return Data(try shape.signed(.assertion, key: key, certificate: cert)).base64EncodedString()
    }

    static func formBody(_ fields: [String: String]) -> String {
        fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
    }

    static func post(_ g: Gateway, org: String = "acme", form: [String: String], cookies: [String] = [], accept: String = "text/html") throws -> RawHTTPClient.Response {
        let body = formBody(form)
        let cookieLine = cookies.isEmpty ? "" : "Cookie: \(cookies.joined(separator: "; "))\r\n"
        return try g.harness.request("POST /organizations/\(org)/saml/consume HTTP/1.1\r\nHost: hub.example.test\r\nAccept: \(accept)\r\n\(cookieLine)Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    /// Starts a login and completes it; returns the session cookie pair.
    static func logIn(_ g: Gateway, returnTo: String = "/acme/private") throws -> (RawHTTPClient.Response, String) {
        let start = try g.harness.request("GET /organizations/acme/sso?return_to=\(returnTo) HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
        let location = try #require(start.header("location"))
        let login = try #require(cookie(start, "ssogate_session_login"))
        let done = try post(g, form: ["SAMLResponse": try samlResponse(inResponseTo: requestID(in: location)), "RelayState": returnTo],
                            cookies: ["ssogate_session_login=" + value(login)])
        return (done, done.values("set-cookie").first { $0.hasPrefix("ssogate_session=") }.map { "ssogate_session=" + value($0) } ?? "")
    }

    @Test func startingALoginRedirectsToTheIdPWithALoginStateCookie() async throws {
        let g = try await Self.start()
        let r = try g.harness.request("GET /organizations/acme/sso?return_to=/acme/private HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(r.status == 302)
        let location = try #require(r.header("location"))
        #expect(location.hasPrefix("https://idp.example.test/sso?SAMLRequest="))
        #expect(location.contains("RelayState=%2Facme%2Fprivate"))
        let login = try #require(Self.cookie(r, "ssogate_session_login"))
        #expect(login.contains("SameSite=None") && login.contains("Secure") && login.contains("HttpOnly"))
        #expect(login.contains("Path=/organizations/acme/saml/consume"))
        await stop(g)
    }

    @Test func aFullLoginSetsTheSessionAndTheUpstreamSeesTheIdentity() async throws {
        let g = try await Self.start()
        let (done, session) = try Self.logIn(g)
        #expect(done.status == 303)
        #expect(done.header("location") == "/acme/private")
        let set = try #require(Self.cookie(done, "ssogate_session"))
        #expect(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Secure") && set.contains("Path=/"))
        let r = try g.harness.request("GET /acme/echo HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nCookie: theme=dark; \(session)\r\n\r\n")
        #expect(r.status == 200)
        let seen = try #require(g.upstream.requests.last)
        #expect(seen.values("x-forwarded-user") == ["alice@example.test"])
        #expect(seen.values("x-forwarded-email") == ["alice@example.test"])
        #expect(seen.values("x-forwarded-groups") == ["engineering,hf-admins"])
        #expect(seen.values("x-sso-organization") == ["acme"])
        #expect(seen.values("x-sso-role") == ["admin"])
        // The session cookie is the gateway's: the application sees only its own.
        #expect(seen.values("cookie") == ["theme=dark"])
        await stop(g)
    }

    @Test func aGrantForOneOrganizationAuthorizesNothingOfAnother() async throws {
        let g = try await Self.start()
        let (_, session) = try Self.logIn(g)
        let r = try g.harness.request("GET /globex/x HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nCookie: \(session)\r\n\r\n")
        #expect(r.status == 401)
        await stop(g)
    }

    @Test func apiClientsGetTheExact401JSON() async throws {
        let g = try await Self.start()
        let r = try g.harness.request("GET /acme/models HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n")
        #expect(r.status == 401)
        #expect(r.header("content-type") == "application/json")
        // docs/CONTRACT.md's body, and (issue 17) where a CLI gets a token.
        #expect(r.text == #"{"error":"sso_required","organization":"acme","sso_url":"https://hub.example.test/organizations/acme/sso","#
                + #""token_url":"https://hub.example.test/organizations/acme/settings/tokens"}"#)
        #expect(r.header("www-authenticate") == "Basic realm=\"ssogate acme\"")
        let post = try g.harness.request("POST /acme/upload HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nContent-Length: 0\r\n\r\n")
        #expect(post.status == 401)
        #expect(g.upstream.requests.isEmpty)
        await stop(g)
    }

    @Test func browsersAreRedirectedOrForwardedAnonymouslyByMode() async throws {
        let g = try await Self.start()
        let redirect = try g.harness.request("GET /globex/x?y=1 HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\n\r\n")
        #expect(redirect.status == 302)
        #expect(redirect.header("location") == "/organizations/globex/sso?return_to=/globex/x%3Fy%3D1")
        let banner = try g.harness.request("GET /acme/echo HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nX-Forwarded-User: evil\r\n\r\n")
        #expect(banner.status == 200)
        let seen = try #require(g.upstream.requests.last)
        #expect(seen.values("x-forwarded-user").isEmpty && seen.values("x-sso-organization").isEmpty)
        await stop(g)
    }

    @Test func aLoginTooLargeForACookieIsRefusedWithItsReason() async throws {
        let g = try await Self.start()
        let start = try g.harness.request("GET /organizations/acme/sso HTTP/1.1\r\nHost: h\r\n\r\n")
        let login = try #require(Self.cookie(start, "ssogate_session_login"))
        let response = try Self.samlResponse(inResponseTo: Self.requestID(in: try #require(start.header("location"))),
                                             nameID: String(repeating: "n", count: 5000) + "@example.test")
        let r = try Self.post(g, form: ["SAMLResponse": response], cookies: ["ssogate_session_login=" + Self.value(login)],
                              accept: "application/json")
        #expect(r.status == 403)
        #expect(r.text.contains("\"error\":\"session_too_large\""))
        #expect(Self.cookie(r, "ssogate_session") == nil)
        await stop(g)
    }

    @Test func aReplayedResponseIsRefusedWithItsReasonAsJSON() async throws {
        let g = try await Self.start()
        let start = try g.harness.request("GET /organizations/acme/sso HTTP/1.1\r\nHost: h\r\n\r\n")
        let login = "ssogate_session_login=" + Self.value(try #require(Self.cookie(start, "ssogate_session_login")))
        let response = try Self.samlResponse(inResponseTo: Self.requestID(in: start.header("location")!))
        #expect(try Self.post(g, form: ["SAMLResponse": response], cookies: [login]).status == 303)
        let again = try Self.post(g, form: ["SAMLResponse": response], cookies: [login], accept: "application/json")
        #expect(again.status == 403)
        #expect(again.text.hasPrefix(#"{"error":"in_response_to_unknown","organization":"acme","request_id":""#))
        #expect(Self.cookie(again, "ssogate_session") == nil)
        #expect(g.harness.logs.contains("login refused") && g.harness.logs.contains("reason=in_response_to_unknown"))
        await stop(g)
    }

    @Test func aResponseWithoutItsLoginStateSaysSo() async throws {
        let g = try await Self.start()
        let r = try Self.post(g, form: ["SAMLResponse": try Self.samlResponse(inResponseTo: "id-request-elsewhere")])
        #expect(r.status == 403)
        #expect(r.text.contains("login_state_missing"))
        #expect(r.text.contains("Try again"))
        await stop(g)
    }

    @Test func anUnsolicitedResponseNeedsTheOptIn() async throws {
        let g = try await Self.start()
        let r = try Self.post(g, form: ["SAMLResponse": try Self.samlResponse(inResponseTo: nil)], accept: "application/json")
        #expect(r.status == 403)
        #expect(r.text.contains("unsolicited_not_allowed"))
        await stop(g)
    }

    @Test func testModeShowsTheAssertionAndIssuesNoSession() async throws {
        let g = try await Self.start()
        let start = try g.harness.request("GET /organizations/dormant/sso?test=1 HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(start.status == 302)  // works while enabled: false
        let login = "ssogate_session_login=" + Self.value(try #require(Self.cookie(start, "ssogate_session_login")))
        let response = try Self.samlResponse(inResponseTo: Self.requestID(in: start.header("location")!), org: "dormant")
        let r = try Self.post(g, org: "dormant", form: ["SAMLResponse": response], cookies: [login])
        #expect(r.status == 200)
        #expect(r.text.contains("alice@example.test") && r.text.contains("hf-admins"))
        #expect(r.text.contains("ssogate-test-result\">success"))
        #expect(Self.cookie(r, "ssogate_session") == nil)
        await stop(g)
    }

    @Test func unknownAndDisabledOrganizationsAre404() async throws {
        let g = try await Self.start()
        #expect(try g.harness.request("GET /organizations/nope/sso HTTP/1.1\r\nHost: h\r\n\r\n").status == 404)
        let disabled = try g.harness.request("GET /organizations/dormant/sso HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(disabled.status == 404 && disabled.text.contains("not enabled"))
        await stop(g)
    }

    @Test func aTamperedSessionCookieIsNoSessionAndIsCleared() async throws {
        let g = try await Self.start()
        let (_, session) = try Self.logIn(g)
        var bytes = Array(session.utf8)
        bytes[bytes.count - 10] = bytes[bytes.count - 10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let tampered = String(decoding: bytes, as: UTF8.self)
        let api = try g.harness.request("GET /acme/x HTTP/1.1\r\nHost: h\r\nCookie: \(tampered)\r\n\r\n")
        #expect(api.status == 401)
        #expect(Self.cookie(api, "ssogate_session")?.contains("Max-Age=0") == true)
        let open = try g.harness.request("GET /echo HTTP/1.1\r\nHost: h\r\nCookie: \(tampered)\r\n\r\n")
        #expect(open.status == 200 && Self.cookie(open, "ssogate_session")?.contains("Max-Age=0") == true)
        #expect(g.upstream.requests.last?.values("x-forwarded-user").isEmpty == true)
        // A good cookie is left alone.
        let good = try g.harness.request("GET /echo HTTP/1.1\r\nHost: h\r\nCookie: \(session)\r\n\r\n")
        #expect(Self.cookie(good, "ssogate_session") == nil)
        await stop(g)
    }

    @Test func spMetadataIsServed() async throws {
        let g = try await Self.start()
        let r = try g.harness.request("GET /organizations/acme/saml/metadata HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(r.status == 200)
        #expect(r.text.contains("entityID=\"https://hub.example.test/organizations/acme/saml/metadata\""))
        await stop(g)
    }

    @Test func theUpstreamCannotSetTheGatewaysCookie() async throws {
        let g = try await Self.start()
        let r = try g.harness.request("GET /setcookie HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(r.values("set-cookie") == ["app=1; Path=/"])
        await stop(g)
    }
}

enum CompressionFixtures {
    static let page: [UInt8] = try! Fixture.bytes("compression/page.html")
}

@Suite("Login with SSO banner over sockets")
struct BannerFlowTests {
    @Test func anAnonymousNavigationGetsTheBannerAfterTheBodyTag() async throws {
        let g = try await SSOFlowTests.start()
        let r = try g.harness.request("GET /acme/html?x=1 HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nAccept-Encoding: gzip, br\r\n\r\n")
        #expect(r.status == 200)
        #expect(r.header("transfer-encoding") == "chunked" && r.header("content-length") == nil)
        let expectedBanner = BannerInjector.html(organization: "acme", loginURL: "/organizations/acme/sso?return_to=/acme/html%3Fx%3D1")
        #expect(r.text == "<!doctype html><html><head><title>t</title></head><body class=\"app\">\(expectedBanner)<h1>Repo</h1></body></html>")
        #expect(g.upstream.requests.last?.values("accept-encoding") == ["identity"])
        await SSOFlowTests().stop(g)
    }

    @Test func otherAnswersAreUntouched() async throws {
        let g = try await SSOFlowTests.start()
        let json = try g.harness.request("GET /acme/echo HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\n\r\n")
        #expect(json.status == 200 && !json.text.contains("ssogate-banner"))
        let zstd = try g.harness.request("GET /acme/html-zstd HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\n\r\n")
        #expect(zstd.text == "ZSTD-BYTES" && zstd.header("content-length") == "10" && zstd.header("content-encoding") == "zstd")
        let head = try g.harness.request("HEAD /acme/html HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\n\r\n", forHead: true)
        #expect(head.status == 200)
        await SSOFlowTests().stop(g)
    }

    /// The upstream ignores `Accept-Encoding: identity` and answers compressed: the page is
    /// decoded, given its banner and encoded again, whatever the coding.
    @Test(arguments: ["gzip", "deflate", "br"])
    func aCompressedPageGetsTheBannerAndStaysCompressed(coding: String) async throws {
        let g = try await SSOFlowTests.start()
        let r = try g.harness.request("GET /acme/compressed?coding=\(coding) HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\n\r\n")
        #expect(r.status == 200)
        #expect(r.header("content-encoding") == coding && r.header("transfer-encoding") == "chunked")
        let page = String(decoding: try StreamDecoder(ContentCoding(header: coding)!).decode(r.body), as: UTF8.self)
        let original = String(decoding: CompressionFixtures.page, as: UTF8.self)
        let banner = BannerInjector.html(organization: "acme", loginURL: "/organizations/acme/sso?return_to=/acme/compressed%3Fcoding%3D\(coding)")
        #expect(page == original.replacingOccurrences(of: "<body class=\"c\">", with: "<body class=\"c\">" + banner))
        #expect(r.body.count < page.utf8.count / 4)
        await SSOFlowTests().stop(g)
    }

    @Test func anAppsRestrictedPageGetsTheBannerButItsErrorsDoNot() async throws {
        let g = try await SSOFlowTests.start()
        let restricted = try g.harness.request("GET /acme/restricted HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\n\r\n")
        #expect(restricted.status == 403 && restricted.text.contains("id=\"ssogate-banner\""))
        let broken = try g.harness.request("GET /acme/broken HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\n\r\n")
        #expect(broken.status == 500 && !broken.text.contains("ssogate-banner"))
        await SSOFlowTests().stop(g)
    }

    @Test func aLoggedInNavigationHasNoBanner() async throws {
        let g = try await SSOFlowTests.start()
        let (_, session) = try SSOFlowTests.logIn(g)
        let r = try g.harness.request("GET /acme/html HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nCookie: \(session)\r\n\r\n")
        #expect(r.status == 200 && !r.text.contains("ssogate-banner") && r.header("content-length") != nil)
        await SSOFlowTests().stop(g)
    }

    @Test func anHTTP10ClientGetsTheBannerInACloseDelimitedBody() async throws {
        let g = try await SSOFlowTests.start()
        let c = try g.harness.client()
        try c.send("GET /acme/html HTTP/1.0\r\nHost: h\r\nAccept: text/html\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.text.contains("<body class=\"app\"><div id=\"ssogate-banner\""))
        await SSOFlowTests().stop(g)
    }
}

@Suite("Protected paths cannot be reached by another spelling")
struct PathBypassTests {
    @Test(arguments: ["/%61cme/private", "//acme/private", "/x/../acme/private", "/ACME/private", "/./acme/private"])
    func everySpellingOfAProtectedPathIsProtected(path: String) async throws {
        let g = try await SSOFlowTests.start()
        let r = try g.harness.request("GET \(path) HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n")
        #expect(r.status == 401, "\(path) got \(r.status)")
        #expect(g.upstream.requests.isEmpty)
        await SSOFlowTests().stop(g)
    }

    @Test(arguments: ["/acme%2Fprivate", "/acme%5cprivate"])
    func encodedSeparatorsAreRefused(path: String) async throws {
        let g = try await SSOFlowTests.start()
        let r = try g.harness.request("GET \(path) HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(r.status == 400)
        #expect(g.upstream.requests.isEmpty)
        await SSOFlowTests().stop(g)
    }

    @Test func theUpstreamReceivesTheCanonicalPath() async throws {
        let g = try await SSOFlowTests.start()
        let r = try g.harness.request("GET /x/../%65cho?q=%2F HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(r.status == 200)
        #expect(try Echo(r).uri == "/echo?q=%2F")
        await SSOFlowTests().stop(g)
    }

    @Test func twoHostFieldsAreRefused() async throws {
        let g = try await SSOFlowTests.start()
        let r = try g.harness.request("GET /echo HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n")
        #expect(r.status == 400)
        #expect(g.upstream.requests.isEmpty)
        await SSOFlowTests().stop(g)
    }
}
