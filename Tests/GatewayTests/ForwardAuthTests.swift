import Foundation
@testable import Gateway
@testable import HTTPWire
import NIOHTTP1
import TestSupport
import Testing

/// Forward-auth over real sockets (docs/CONTRACT.md "Forward-auth"): the request each ingress
/// describes, answered with the built-in proxy's decision in the shape that ingress relays.
/// The real nginx and Caddy in front of it are in Tests/ForwardAuth/check_forward_auth.py.
@Suite("Forward-auth", .serialized)
struct ForwardAuthTests {
    typealias API = SettingsAPITests
    static let trusted = "trusted_proxies: [\"127.0.0.1/32\"]"

    static func ask(_ g: SSOFlowTests.Gateway, _ fields: [(String, String)], path: String = "/_ssogate/auth",
                    method: String = "GET") async throws -> RawHTTPClient.Response {
        let lines = fields.map { "\($0.0): \($0.1)\r\n" }.joined()
        return try await API.request(g, "\(method) \(path) HTTP/1.1\r\nHost: gateway.internal\r\n\(lines)\r\n")
    }

    /// Traefik's and Caddy's description of a request.
    static func traefik(_ uri: String, method: String = "GET", accept: String, cookie: String? = nil) -> [(String, String)] {
        [("X-Forwarded-Method", method), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "hub.example.test"),
         ("X-Forwarded-Uri", uri), ("Accept", accept)] + (cookie.map { [("Cookie", $0)] } ?? [])
    }

    @Test func onlyTrustedProxiesMayAsk() async throws {
        let g = try await SSOFlowTests.start()
        let r = try await Self.ask(g, Self.traefik("/acme/models", accept: "application/json"))
        #expect(r.status == 403 && r.text.contains("trusted_proxies"))
        await SSOFlowTests().stop(g)
    }

    @Test func browsersAreSentToLogInAndAPIClientsGetThe401() async throws {
        let g = try await SSOFlowTests.start(extra: Self.trusted)
        // acme's banner mode cannot work here (the gateway never sees the page): a redirect.
        let browser = try await Self.ask(g, Self.traefik("/acme/models?x=1", accept: "text/html"))
        #expect(browser.status == 302 && browser.header("location") == "/organizations/acme/sso?return_to=/acme/models%3Fx%3D1")
        let api = try await Self.ask(g, Self.traefik("/acme/models", accept: "application/json"))
        #expect(api.status == 401 && API.field(api, "error") == "sso_required" && api.header("www-authenticate") == "Basic realm=\"ssogate acme\"")
        // A POST from a browser is no navigation: the 401 too.
        #expect(try await Self.ask(g, Self.traefik("/acme/upload", method: "POST", accept: "text/html")).status == 401)
        // Content no organization protects: allowed, nobody named.
        let open = try await Self.ask(g, Self.traefik("/public/page", accept: "text/html"))
        #expect(open.status == 200 && open.header("x-forwarded-user") == "" && open.header("x-sso-role") == "",
                "each identity header named, empty: an ingress copying it replaces a client's copy with nothing")
        #expect(g.upstream.requests.isEmpty, "forward-auth never proxies")
        await SSOFlowTests().stop(g)
    }

    @Test func aMembersRequestIsAllowedWithTheIdentityToCopy() async throws {
        let g = try await SSOFlowTests.start(extra: Self.trusted)
        let cookie = try await SessionEndTests.logIn(g)
        var fields = Self.traefik("/acme/models", accept: "text/html", cookie: cookie)
        fields.append(("X-Forwarded-User", "mallory@evil.test"))
        let r = try await Self.ask(g, fields)
        #expect(r.status == 200)
        #expect(r.values("x-forwarded-user") == ["alice@example.test"], "the identity is the session's, never the client's copy")
        #expect(r.header("x-sso-organization") == "acme" && r.header("x-sso-role") == "admin")
        // Another organization's content with acme's session: not acme's to open.
        #expect(try await Self.ask(g, Self.traefik("/globex/models", accept: "application/json", cookie: cookie)).status == 401)
        // Envoy's ext_authz: the original method and path after the endpoint's.
        let envoy = try await Self.ask(g, [("Cookie", cookie), ("Accept", "application/json")], path: "/_ssogate/auth/acme/models")
        #expect(envoy.status == 200 && envoy.header("x-forwarded-user") == "alice@example.test")
        #expect(g.upstream.requests.isEmpty)
        await SSOFlowTests().stop(g)
    }

    @Test func nginxGetsOnlyStatusCodesItRelays() async throws {
        let g = try await SSOFlowTests.start(extra: Self.trusted)
        let original = [("X-Original-URL", "https://hub.example.test/acme/models?x=1"), ("X-Original-Method", "GET")]
        let browser = try await Self.ask(g, original + [("Accept", "text/html")])
        #expect(browser.status == 401 && browser.header("location") == "/organizations/acme/sso?return_to=/acme/models%3Fx%3D1")
        let api = try await Self.ask(g, original + [("Accept", "application/json")])
        #expect(api.status == 401 && api.header("x-sso-error")?.contains("\"sso_required\"") == true, "the body nginx drops, in a header")
        let cookie = try await SessionEndTests.logIn(g)
        let member = try await Self.ask(g, original + [("Accept", "text/html"), ("Cookie", cookie)])
        #expect(member.status == 200 && member.header("x-forwarded-user") == "alice@example.test")
        await SSOFlowTests().stop(g)
    }

    @Test func whatCannotDescribeARequestIsRefused() async throws {
        let g = try await SSOFlowTests.start(extra: Self.trusted)
        #expect(try await Self.ask(g, [("Accept", "text/html")]).status == 400, "no described request")
        #expect(try await Self.ask(g, [("X-Original-URL", "not a url")]).status == 400)
        #expect(try await Self.ask(g, Self.traefik("/acme/../globex/x", accept: "text/html")).status == 302,
                "the described path is made canonical first: globex's content, globex's login")
        #expect(try await Self.ask(g, [("X-Forwarded-Uri", "/acme/x"), ("X-Forwarded-Method", "get;x")]).status == 400)
        await SSOFlowTests().stop(g)
    }

    @Test func describedRequestsAreReadAsEachIngressSendsThem() throws {
        func read(_ uri: String, _ fields: [(String, String)], method: HTTPMethod = .GET) throws -> ForwardedRequest {
            try ForwardedRequest.read(HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(fields)),
                                      endpoint: "/_ssogate/auth").get()
        }
        let traefik = try read("/_ssogate/auth", [("Host", "auth"), ("X-Forwarded-Method", "POST"), ("X-Forwarded-Uri", "/a/b?c"),
                                                  ("X-Forwarded-Host", "hub"), ("Cookie", "x=1")])
        #expect(traefik.head.method == .POST && traefik.head.uri == "/a/b?c" && traefik.head.headers["host"] == ["hub"])
        #expect(traefik.head.headers["x-forwarded-uri"].isEmpty && traefik.head.headers["cookie"] == ["x=1"] && !traefik.onlyStatusCodes)
        let nginx = try read("/_ssogate/auth", [("Host", "auth"), ("X-Original-URL", "https://hub.example/a?b=1"), ("X-Original-Method", "DELETE")])
        #expect(nginx.head.method == .DELETE && nginx.head.uri == "/a?b=1" && nginx.head.headers["host"] == ["hub.example"] && nginx.onlyStatusCodes)
        let envoy = try read("/_ssogate/auth/a/b?c=d", [("Host", "hub")], method: .PUT)
        #expect(envoy.head.method == .PUT && envoy.head.uri == "/a/b?c=d")
    }
}
