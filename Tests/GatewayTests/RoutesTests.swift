@testable import Access
import Config
import Foundation
@testable import Gateway
import TestSupport
import Testing

/// Several applications behind one gateway (`routes[]`), over real sockets: each route's
/// upstream gets its own requests, protected by its own paths and organizations; a whole-host
/// route protects every path for one organization, even while its SSO is off.
@Suite("Routes", .serialized)
struct RoutesTests {
    typealias API = SettingsAPITests
    typealias Policy = AccessPolicyTests

    static func yaml(defaultPort: Int, models: Int, wiki: Int) -> String {
        """
        listen: "127.0.0.1:0"
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:\(defaultPort)"
        session: {secrets: ["0123456789abcdef0123456789abcdef-test"]}
        protected_paths: ["/{org}/"]
        store: memory
        trusted_proxies: ["127.0.0.1/32"]
        routes:
          - {host: "models.example.test", upstream: "http://127.0.0.1:\(models)", organizations: [acme]}
          - {host: "models.example.test", path_prefix: "/wiki", upstream: "http://127.0.0.1:\(wiki)", organization: globex}
          - {host: "*.wiki.example.test", upstream: "http://127.0.0.1:\(wiki)", organization: globex}
          - {host: "closed.example.test", upstream: "http://127.0.0.1:\(wiki)", organization: dormant}
        organizations:
          - name: acme
            \(Policy.saml("acme"))
          - name: globex
            \(Policy.saml("globex"))
          - name: dormant
            \(Policy.saml("dormant", enabled: false))
        """
    }

    static func get(_ g: SSOFlowTests.Gateway, host: String, _ path: String, cookie: String? = nil) async throws -> RawHTTPClient.Response {
        try await API.request(g, "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nAccept: application/json\r\n" + (cookie.map { "Cookie: \($0)\r\n" } ?? "") + "\r\n")
    }

    @Test func eachRouteGoesToItsUpstreamUnderItsOwnProtection() async throws {
        let models = try await TestUpstream.start()
        let wiki = try await TestUpstream.start()
        let g = try await API.start { Self.yaml(defaultPort: $0, models: models.port, wiki: wiki.port) }
        let acme = try Policy.session(try await Policy.logIn(g, org: "acme", email: "ann@acme.test", groups: []))
        let globex = try Policy.session(try await Policy.logIn(g, org: "globex", email: "gil@globex.test", groups: []))

        // models.example.test: acme's {org} paths, to the models upstream.
        #expect(try await Self.get(g, host: "models.example.test", "/acme/x").status == 401)
        #expect(try await Self.get(g, host: "Models.Example.test:443", "/acme/x", cookie: acme).status == 200)
        #expect(models.requests.last?.values("x-forwarded-user") == ["ann@acme.test"] && models.requests.last?.values("x-sso-organization") == ["acme"])
        // globex is not this route's organization: its name in a path here protects nothing.
        #expect(try await Self.get(g, host: "models.example.test", "/globex/x").status == 200)
        #expect(models.requests.count == 2 && models.requests.last?.values("x-forwarded-user").isEmpty == true)

        // A longer prefix on the same host, whole-host for globex: every path is its content.
        #expect(try await Self.get(g, host: "models.example.test", "/wiki/Home").status == 401)
        let page = try await Self.get(g, host: "models.example.test", "/WIKI/Home", cookie: globex)
        #expect(page.status == 200 && wiki.requests.last?.values("x-sso-organization") == ["globex"])
        #expect(wiki.requests.last?.values("x-forwarded-user") == ["gil@globex.test"])
        #expect(try await Self.get(g, host: "models.example.test", "/wikipedia", cookie: acme).status == 200, "/wikipedia is not under /wiki")
        #expect(models.requests.count == 3)

        // A subdomain of the wildcard; its root path too.
        let unauthorized = try await Self.get(g, host: "docs.wiki.example.test", "/")
        #expect(unauthorized.status == 401 && API.field(unauthorized, "organization") == "globex")
        #expect(try await Self.get(g, host: "docs.wiki.example.test", "/", cookie: acme).status == 401, "acme's grant opens nothing of globex")
        #expect(try await Self.get(g, host: "wiki.example.test", "/x").status == 200, "the wildcard covers subdomains only: the default route")

        // Any other host: the top-level upstream and protected_paths.
        let before = g.upstream.requests.count
        #expect(try await Self.get(g, host: "hub.example.test", "/acme/x").status == 401)
        #expect(try await Self.get(g, host: "hub.example.test", "/acme/x", cookie: acme).status == 200)
        #expect(g.upstream.requests.count == before + 1, "the 401 reached no upstream")

        // A whole-host route of an organization whose SSO is off stays closed.
        #expect(try await Self.get(g, host: "closed.example.test", "/anything").status == 401)
        #expect(wiki.requests.allSatisfy { $0.values("host") != ["closed.example.test"] })

        await SSOFlowTests().stop(g)
        await models.stop()
        await wiki.stop()
    }

    @Test func forwardAuthDecidesWithTheRouteOfTheDescribedHost() async throws {
        let g = try await API.start { Self.yaml(defaultPort: $0, models: 9, wiki: 9) }
        func ask(_ host: String, _ uri: String) async throws -> RawHTTPClient.Response {
            try await ForwardAuthTests.ask(g, [("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", host), ("X-Forwarded-Uri", uri),
                                               ("Accept", "application/json")])
        }
        let whole = try await ask("docs.wiki.example.test", "/")
        #expect(whole.status == 401 && API.field(whole, "organization") == "globex")
        #expect(try await ask("models.example.test", "/globex/x").status == 200, "not protected on the models route")
        #expect(try await ask("hub.example.test", "/globex/x").status == 401, "protected on the default route")
        await SSOFlowTests().stop(g)
    }

    @Test(arguments: [
        ("models.example.test", "/acme/x", 0), ("MODELS.example.test:8443", "/acme", 0), ("models.example.test", "/wiki", 1),
        ("models.example.test", "/wiki/a", 1), ("models.example.test", "/wikix", 0), ("a.wiki.example.test", "/", 2),
        ("a.b.wiki.example.test", "/x", 2), ("wiki.example.test", "/", -1), ("other.test", "/acme/x", -1),
    ])
    func theRouterPicksHostThenTheLongestPrefix(host: String, path: String, expected: Int) throws {
        let configuration = try ConfigLoader.load(yaml: Self.yaml(defaultPort: 9, models: 10, wiki: 11), environment: [:], baseDirectory: ".")
        let router = Router(configuration.routes)
        #expect(router.route(host: host, path: Substring(path)) == (expected < 0 ? nil : expected))
    }
}
