import Foundation
@testable import Gateway
import HTTPWire
import TestSupport
import Testing

/// Who did what, in the logs (README "Observability"): the access line of a request names
/// its organization, its member (or access token) and its request id; the upstream gets the
/// same id in `X-Request-Id`; a client's id never passes, a trusted proxy's does; the login
/// line names the subject under the ACS request's id; requests are counted per organization.
@Suite("Request ids and who a request was for", .serialized)
struct RequestContextTests {
    typealias API = SettingsAPITests

    /// The access line whose path is `path` (the latest), waiting for it a little: a line is
    /// written when the exchange ends, which can be just after the client has its answer.
    static func accessLine(_ g: SSOFlowTests.Gateway, path: String) async throws -> String {
        for _ in 0..<100 {
            if let line = g.harness.accessLogs.all.last(where: { $0.contains(" path=\(path) ") }) { return line }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("no access line for \(path) in \(g.harness.accessLogs.all)")
        return ""
    }

    /// The value of `key=` in a text log line.
    static func field(_ key: String, in line: String) -> String? {
        line.split(separator: " ").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    @Test func aMembersRequestIsLoggedWithTheirOrganizationAndSubjectUnderTheIdTheUpstreamGot() async throws {
        let g = try await SSOFlowTests.start()
        let cookie = try await SessionEndTests.logIn(g)
        let r = try await API.request(g, "GET /acme/echo HTTP/1.1\r\nHost: hub.example.test\r\nCookie: \(cookie)\r\n\r\n")
        #expect(r.status == 200)
        let sent = try #require(g.upstream.requests.last?.values("x-request-id"))
        #expect(sent.count == 1 && sent[0].utf8.count == 16 && sent[0].allSatisfy(\.isHexDigit), "\(sent)")
        let line = try await Self.accessLine(g, path: "/acme/echo")
        #expect(Self.field("organization", in: line) == "acme")
        #expect(Self.field("subject", in: line) == "alice@example.test")
        #expect(Self.field("request_id", in: line) == sent.first)
        #expect(Self.field("token", in: line) == nil)

        // Anonymous content: an id, and nobody named.
        _ = try await API.request(g, "GET /public/echo HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
        let anonymous = try await Self.accessLine(g, path: "/public/echo")
        #expect(Self.field("subject", in: anonymous) == nil && Self.field("organization", in: anonymous) == nil)
        #expect(Self.field("request_id", in: anonymous) == g.upstream.requests.last?.values("x-request-id").first)
        #expect(Self.field("request_id", in: anonymous) != Self.field("request_id", in: line))
        await SSOFlowTests().stop(g)
    }

    @Test func aRequestLetInByAnAccessTokenIsLoggedWithTheTokensId() async throws {
        let g = try await SSOFlowTests.start()
        let cookie = try await SessionEndTests.logIn(g)
        let token = try TokenTests.token(try await TokenTests.make(g, cookie: cookie))
        #expect(try await TokenTests.get(g, "/acme/model", "Bearer \(token.text)") == (200, "alice@example.test"))
        let line = try await Self.accessLine(g, path: "/acme/model")
        #expect(Self.field("token", in: line) == token.id)
        #expect(Self.field("subject", in: line) == "alice@example.test")
        #expect(!line.contains(token.text), "the token itself is never logged")
        await SSOFlowTests().stop(g)
    }

    @Test func theLoginLineNamesTheSubjectUnderTheIdOfTheACSRequestsAccessLine() async throws {
        let g = try await SSOFlowTests.start()
        _ = try await SessionEndTests.logIn(g, nameID: "carol@example.test")
        let line = try await Self.accessLine(g, path: "/organizations/acme/saml/consume")
        #expect(Self.field("organization", in: line) == "acme")
        let id = try #require(Self.field("request_id", in: line))
        let login = try #require(g.harness.logs.all.last { $0.contains("info login ") })
        #expect(login.contains("subject=carol@example.test") && login.contains("request_id=\(id)"), "\(login)")
        await SSOFlowTests().stop(g)
    }

    @Test func aClientsRequestIdNeverPassesButATrustedProxysDoes() async throws {
        let g = try await SSOFlowTests.start()
        _ = try await API.request(g, "GET /echo HTTP/1.1\r\nHost: h\r\nX-Request-Id: forged-1\r\nX_Request_Id: forged-2\r\n"
                                     + "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n")
        let seen = try #require(g.upstream.requests.last)
        #expect(seen.values("x-request-id").count == 1 && !seen.values("x-request-id")[0].hasPrefix("forged"))
        #expect(seen.values("x_request_id").isEmpty)
        #expect(seen.values("traceparent").isEmpty, "a client does not choose the trace the upstream files its work under")
        await SSOFlowTests().stop(g)

        let proxied = try await SSOFlowTests.start(extra: ForwardAuthTests.trusted)
        _ = try await API.request(proxied, "GET /echo HTTP/1.1\r\nHost: h\r\nX-Request-Id: edge-7f3a\r\n\r\n")
        #expect(proxied.upstream.requests.last?.values("x-request-id") == ["edge-7f3a"])
        let line = try await Self.accessLine(proxied, path: "/echo")
        #expect(Self.field("request_id", in: line) == "edge-7f3a")
        // One that would break a log line or a page is replaced.
        for bad in ["has space", String(repeating: "a", count: 129), "quote\"d"] {
            _ = try await API.request(proxied, "GET /echo HTTP/1.1\r\nHost: h\r\nX-Request-Id: \(bad)\r\n\r\n")
            let sent = proxied.upstream.requests.last?.values("x-request-id") ?? []
            #expect(sent.count == 1 && sent[0] != bad && sent[0].utf8.count == 16, "\(bad): \(sent)")
        }
        await SSOFlowTests().stop(proxied)
    }

    @Test func overHTTP2TheUpstreamGetsTheIdTheAccessLineNames() async throws {
        let g = try await SSOFlowTests.start()
        let cookie = try await SessionEndTests.logIn(g)
        let port = g.harness.port
        _ = try await offThePool {
            try Curl.run(["--http2-prior-knowledge", "-s", "-H", "Host: hub.example.test", "-H", "Cookie: \(cookie)",
                          "-H", "X-Request-Id: forged", "http://127.0.0.1:\(port)/acme/h2-echo"])
        }
        let sent = try #require(g.upstream.requests.last?.values("x-request-id"))
        #expect(sent.count == 1 && sent[0] != "forged")
        let line = try await Self.accessLine(g, path: "/acme/h2-echo")
        #expect(Self.field("request_id", in: line) == sent.first)
        #expect(Self.field("subject", in: line) == "alice@example.test" && Self.field("organization", in: line) == "acme")
        await SSOFlowTests().stop(g)
    }

    @Test func requestsAreCountedPerOrganizationAndStatusClassOnlyForNamesTheConfigurationHas() async throws {
        let g = try await SSOFlowTests.start()
        let cookie = try await SessionEndTests.logIn(g)
        for _ in 0..<3 { _ = try await API.request(g, "GET /acme/echo HTTP/1.1\r\nHost: hub.example.test\r\nCookie: \(cookie)\r\n\r\n") }
        _ = try await API.request(g, "GET /globex/x HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n")
        _ = try await API.request(g, "GET /api/organizations/nobody-xyz/sso HTTP/1.1\r\nHost: h\r\n\r\n")
        _ = try await API.request(g, "GET /organizations/nobody-abc/sso HTTP/1.1\r\nHost: h\r\n\r\n")
        try await Task.sleep(for: .milliseconds(100))
        let metrics = try await API.request(g, "GET /_ssogate/metrics HTTP/1.1\r\nHost: h\r\n\r\n").text
        #expect(metrics.contains("ssogate_organization_requests_total{organization=\"acme\",class=\"2xx\"} 3"), "\(metrics)")
        #expect(metrics.contains("ssogate_organization_requests_total{organization=\"acme\",class=\"3xx\"}"), "the login's starts and ACS post")
        #expect(metrics.contains("ssogate_organization_requests_total{organization=\"globex\",class=\"4xx\"} 1"))
        #expect(!metrics.contains("nobody-"), "a name from a request is never a label")
        await SSOFlowTests().stop(g)
    }

    @Test func idsFromOneSourceDoNotRepeatAndTwoSourcesDiffer() {
        var a = RequestIDSource(), b = RequestIDSource()
        var seen = Set<String>()
        for _ in 0..<10_000 { seen.insert(a.next()) }
        #expect(seen.count == 10_000)
        #expect(!seen.contains(b.next()))
        #expect(RequestIDSource.accepts("edge-7f3a") && !RequestIDSource.accepts("") && !RequestIDSource.accepts("a\\b"))
    }
}
