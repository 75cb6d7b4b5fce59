import Config
import Dispatch
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import Access
@testable import Gateway
import TestSupport

/// The review's findings on the login side, each through the real gateway on loopback.
@Suite("Hostile logins: test mode, live grants, identity bound to its organization")
struct HostileLoginTests {
    typealias Flow = SSOFlowTests

    @Test func testModeNeverIssuesASessionEvenForAnUnsolicitedResponse() async throws {
        let g = try await Flow.start()
        for org in ["dormant", "globex"] {  // SSO disabled, and enabled
            let start = try g.harness.request("GET /organizations/\(org)/sso?test=1 HTTP/1.1\r\nHost: h\r\n\r\n")
            #expect(start.status == 302)
            let login = "ssogate_session_login=" + Flow.value(try #require(Flow.cookie(start, "ssogate_session_login")))
            // The IdP-initiated response answers no request: before, it slipped past test mode.
            let r = try Flow.post(g, org: org, form: ["SAMLResponse": try Flow.samlResponse(inResponseTo: nil, assertionID: "id-test-\(org)", org: org)],
                              cookies: [login])
            #expect(r.status == 200, "\(org)")
            #expect(r.text.contains("ssogate-test-result\">success"), "\(org)")
            #expect(Flow.cookie(r, "ssogate_session") == nil, "\(org): a test issued a session")
        }
        await Flow().stop(g)
    }

    @Test func grantsEndWhenTheirOrganizationIsDisabledOrRemoved() async throws {
        for change in ["disabled", "removed"] {
            let g = try await Flow.start()
            let (_, cookie) = try Flow.logIn(g)
            let before = try g.seen("GET /acme/echo HTTP/1.1\r\nHost: h\r\nCookie: \(cookie)\r\n\r\n")
            #expect(before.values("x-forwarded-user") == ["alice@example.test"])
            var yaml = Flow.yaml(upstreamPort: g.upstream.port, acme: change != "disabled")
            if change == "removed" { yaml = yaml.replacingOccurrences(of: "- name: acme\n", with: "- name: acme-renamed\n") }
            try g.harness.server.reload(try ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: "."))
            let after = try g.harness.request("GET /acme/echo HTTP/1.1\r\nHost: h\r\nCookie: \(cookie)\r\n\r\n")
            let echo = try #require(g.upstream.requests.last)
            #expect(echo.values("x-forwarded-user").isEmpty && echo.values("x-sso-organizations").isEmpty, "\(change)")
            // The grant was its only one: the browser is told to drop the cookie.
            #expect(Flow.cookie(after, "ssogate_session")?.contains("Max-Age=0") == true, "\(change)")
            await Flow().stop(g)
        }
    }

    @Test func aGrantOfADisabledOrganizationIsSealedOutOfTheCookie() async throws {
        let g = try await Flow.start()
        let (_, acme) = try Flow.logIn(g)
        // A second grant, globex's, in the same cookie.
        let both = try Flow.post(g, org: "globex", form: ["SAMLResponse": try Flow.samlResponse(inResponseTo: nil, assertionID: "id-globex", org: "globex")],
                                 cookies: [acme])
        let cookie = "ssogate_session=" + Flow.value(try #require(Flow.cookie(both, "ssogate_session")))
        try g.harness.server.reload(try ConfigLoader.load(yaml: Flow.yaml(upstreamPort: g.upstream.port, acme: false), environment: [:], baseDirectory: "."))
        let r = try g.harness.request("GET /globex/echo HTTP/1.1\r\nHost: h\r\nCookie: \(cookie)\r\n\r\n")
        #expect(g.upstream.requests.last?.values("x-sso-organization") == ["globex"])
        let resealed = "ssogate_session=" + Flow.value(try #require(Flow.cookie(r, "ssogate_session")))
        #expect(resealed != cookie)
        // Enabled again, acme's grant does not come back from the new cookie.
        try g.harness.server.reload(try ConfigLoader.load(yaml: Flow.yaml(upstreamPort: g.upstream.port), environment: [:], baseDirectory: "."))
        let acmePage = try g.harness.request("GET /acme/echo HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nCookie: \(resealed)\r\n\r\n")
        #expect(acmePage.status == 401)
        await Flow().stop(g)
    }

    /// globex's IdP asserts acme's CEO. Before, `/public/...` got `X-Forwarded-User:
    /// ceo@acme.com` with nothing saying which IdP vouched for it.
    @Test func anotherOrganizationsIdPCannotLendAnIdentityToUnprotectedPaths() async throws {
        let g = try await Flow.start()
        let r = try Flow.post(g, org: "globex", form: ["SAMLResponse": try Flow.samlResponse(inResponseTo: nil, org: "globex", nameID: "ceo@acme.com")])
        let cookie = "ssogate_session=" + Flow.value(try #require(Flow.cookie(r, "ssogate_session")))
        let open = try g.seen("GET /public/echo HTTP/1.1\r\nHost: h\r\nCookie: \(cookie)\r\nX-SSO-Organizations: acme\r\n\r\n")
        for name in ["x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-sso-role", "x-sso-organization"] {
            #expect(open.values(name).isEmpty, "\(name) on an unprotected path")
        }
        #expect(open.values("x-sso-organizations") == ["globex"])
        let own = try g.seen("GET /globex/echo HTTP/1.1\r\nHost: h\r\nCookie: \(cookie)\r\n\r\n")
        #expect(own.values("x-forwarded-user") == ["ceo@acme.com"] && own.values("x-sso-organization") == ["globex"])
        #expect(try g.harness.request("GET /acme/echo HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nCookie: \(cookie)\r\n\r\n").status == 401)
        await Flow().stop(g)
    }

    /// Before: a group `eng,hf-admins` reached the upstream as two groups.
    @Test func identityValuesArriveByteExactOrPercentEncoded() async throws {
        let g = try await Flow.start()
        let response = try Flow.samlResponse(inResponseTo: nil, org: "globex", nameID: "zoë@example.test",
                                             groups: ["eng,hf-admins", "Zoë's team", "50%", "plain"])
        let r = try Flow.post(g, org: "globex", form: ["SAMLResponse": response])
        let cookie = "ssogate_session=" + Flow.value(try #require(Flow.cookie(r, "ssogate_session")))
        let echo = try g.seen("GET /globex/echo HTTP/1.1\r\nHost: h\r\nCookie: \(cookie)\r\n\r\n")
        #expect(echo.values("x-forwarded-user") == ["zo%C3%AB@example.test"])
        #expect(echo.values("x-forwarded-groups") == ["eng%2Chf-admins,Zo%C3%AB's team,50%25,plain"])
        let decoded = echo.values("x-forwarded-groups")[0].split(separator: ",").map { $0.removingPercentEncoding }
        #expect(decoded == ["eng,hf-admins", "Zoë's team", "50%", "plain"])
        await Flow().stop(g)
    }

    @Test(arguments: ["eng&#10;X-Evil: 1", "tab&#9;bed"])
    func aControlCharacterInAGroupRefusesTheLogin(_ group: String) async throws {
        let g = try await Flow.start()
        let response = try Flow.samlResponse(inResponseTo: nil, assertionID: "id-bad-group", org: "globex", groups: [group])
        let r = try Flow.post(g, org: "globex", form: ["SAMLResponse": response], accept: "application/json")
        #expect(r.status == 403)
        #expect(r.text.contains("\"error\":\"invalid_identity_value\""))
        #expect(Flow.cookie(r, "ssogate_session") == nil)
        await Flow().stop(g)
    }

    @Test func loginsPastTheClientRateAre429WithRetryAfter() async throws {
        let g = try await Flow.start(extra: "logins: {per_client: \"3/m\"}")
        for _ in 0..<3 {
            #expect(try g.harness.request("GET /organizations/acme/sso HTTP/1.1\r\nHost: h\r\n\r\n").status == 302)
        }
        let start = try g.harness.request("GET /organizations/acme/sso HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(start.status == 429)
        #expect(Int(start.header("retry-after") ?? "") ?? 0 >= 1)
        #expect(start.text.contains("login_rate_limited"))
        let post = try Flow.post(g, form: ["SAMLResponse": "x"], accept: "application/json")
        #expect(post.status == 429 && post.text.contains("\"error\":\"login_rate_limited\""))
        let metrics = try g.harness.request("GET /_ssogate/metrics HTTP/1.1\r\nHost: h\r\n\r\n").text
        #expect(metrics.contains("ssogate_login_refusals_total{endpoint=\"start\",reason=\"login_rate_limited\"} 1"))
        #expect(metrics.contains("ssogate_login_refusals_total{endpoint=\"acs\",reason=\"login_rate_limited\"} 1"))
        // Proxied requests are not logins: never limited.
        #expect(try g.harness.request("GET /_ssogate/healthz HTTP/1.1\r\nHost: h\r\n\r\n").status == 200)
        await Flow().stop(g)
    }

    /// Eight heavy logins complete at once against one worker: with a queue of one, those
    /// past it get `503 login_busy` with `Retry-After`, and every request is answered.
    @Test func aFullLoginQueueAnswers503LoginBusy() async throws {
        let g = try await Flow.start(extra: "logins: {workers: 1, queue: 1, per_client: \"off\"}")
        let results = try await Self.heavyLogins(g, count: 8, healthz: false)
        #expect(results.count == 8 && results.allSatisfy { $0.status == 303 || $0.status == 503 }, "\(results.map(\.status))")
        #expect(results.contains { $0.status == 503 }, "no login was turned away by a full queue")
        #expect(results.contains { $0.status == 303 })
        await Flow().stop(g)
    }

    /// With every login queued behind one worker, `healthz` (answered on the event loop) is
    /// answered before the last login is: validation does not hold the loop.
    @Test func validationRunsOffTheEventLoop() async throws {
        let g = try await Flow.start(extra: "logins: {workers: 1, queue: 16, per_client: \"off\"}")
        let results = try await Self.heavyLogins(g, count: 8, healthz: true)
        let logins = results.filter { $0.name != "healthz" }
        #expect(logins.count == 8 && logins.allSatisfy { $0.status == 303 }, "\(logins.map(\.status))")
        let health = try #require(results.first { $0.name == "healthz" })
        #expect(health.status == 200)
        #expect(health.at < logins.map(\.at).max()!, "healthz waited for the logins")
        await Flow().stop(g)
    }

    /// Posts `count` large, validly signed IdP-initiated responses so that all complete at
    /// once (every body but its last byte first, then the last bytes together); with
    /// `healthz`, asks for it right after. Returns who finished, how, and when.
    ///
    /// It signs, waits and blocks for seconds, so it runs on a thread of its own: on Swift's
    /// cooperative pool (two threads here) it starved other suites' async work (jwt-kit's
    /// signing in the upstream-assertion tests timed out).
    static func heavyLogins(_ g: Flow.Gateway, count: Int, healthz: Bool) async throws -> [(name: String, status: Int, at: UInt64)] {
        try await offThePool { try blockingHeavyLogins(g, count: count, healthz: healthz) }
    }

    private static func blockingHeavyLogins(_ g: Flow.Gateway, count: Int, healthz: Bool) throws -> [(name: String, status: Int, at: UInt64)] {
        let bodies = try (0..<count).map { index in
            Flow.formBody(["SAMLResponse": try Flow.samlResponse(inResponseTo: nil, assertionID: "id-heavy-\(index)", org: "globex",
                                                                 groups: (0..<2_500).map { "group-\($0)" })])
        }
        let finished = NIOLockedValueBox<[(name: String, status: Int, at: UInt64)]>([])
        let port = g.harness.port
        let group = DispatchGroup()
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        for index in 0..<count {
            let body = bodies[index]
            DispatchQueue.global().async(group: group) {
                let head = "POST /organizations/globex/saml/consume HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n"
                    + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
                var status = -1
                if let client = try? RawHTTPClient(port: port, timeout: 60), (try? client.send(head + String(body.dropLast()))) != nil {
                    ready.signal()
                    go.wait()
                    if (try? client.send(String(body.last!))) != nil, let r = try? client.readResponse() {
                        // A 503 counts only as the turn-away it should be.
                        let busy = r.text.contains("login_busy") && r.header("retry-after") == "1"
                        status = r.status == 503 && !busy ? -503 : Int(r.status)
                    }
                } else {
                    ready.signal()
                }
                finished.withLockedValue { $0.append(("login-\(index)", status, DispatchTime.now().uptimeNanoseconds)) }
            }
        }
        for _ in 0..<count { ready.wait() }
        for _ in 0..<count { go.signal() }
        if healthz {
            let health = try g.harness.request("GET /_ssogate/healthz HTTP/1.1\r\nHost: h\r\n\r\n")
            finished.withLockedValue { $0.append(("healthz", Int(health.status), DispatchTime.now().uptimeNanoseconds)) }
        }
        group.wait()
        return finished.withLockedValue { $0 }
    }
}

extension SSOFlowTests.Gateway {
    /// Sends `raw` and returns the request as the upstream received it.
    func seen(_ raw: String) throws -> TestUpstream.Seen {
        let response = try harness.request(raw)
        guard response.status == 200, let last = upstream.requests.last else { throw SeenError(response: "\(response.status) \(response.text)") }
        return last
    }
}

struct SeenError: Error { let response: String }

@Suite("LoginGuard")
struct LoginGuardTests {
    @Test func aFullQueueTurnsWorkAwayAndFreesItsPlaceAfter() async throws {
        let settings = GatewayConfiguration.Logins(workers: 1, queue: 1, perClient: nil, total: nil)
        let guardian = LoginGuard(settings)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let gate = DispatchSemaphore(value: 0)
        let first = try #require(guardian.run(on: loop) { gate.wait(); return 1 })
        let second = try #require(guardian.run(on: loop) { 2 })
        #expect(guardian.run(on: loop) { 3 } == nil)
        gate.signal()
        let results = (try await first.get(), try await second.get())
        #expect(results == (1, 2))
        let fourth = try #require(guardian.run(on: loop) { 4 })
        let value = try await fourth.get()
        #expect(value == 4)
        await guardian.shutdown()
    }

    @Test func ratesArePerClientAndRefill() {
        let limiter = RateLimiter(GatewayConfiguration.Rate(count: 2, seconds: 60), maxClients: 2)
        #expect(limiter.take([1], now: 0) == nil && limiter.take([1], now: 0) == nil)
        #expect(limiter.take([1], now: 1) == 29)  // one token every 30 s
        #expect(limiter.take([2], now: 1) == nil)  // another client has its own bucket
        #expect(limiter.take([1], now: 31) == nil)
        // A third client in a full table: idle buckets make room; none is forgotten early.
        #expect(limiter.take([3], now: 31) == nil)
    }
}
