import Foundation
@testable import Gateway
import NIOConcurrencyHelpers
import StateStore
import TestSupport
import Testing

/// Sessions that end (docs/CONTRACT.md "Sessions, logout and Single Logout"), over real
/// sockets: logout needs a same-origin proof and then ends the cookie everywhere (a copy of
/// it is refused too), "log out everywhere", an admin's revoke, idle timeout, disabling,
/// and an ending on one gateway refused by another on the same store within 5 seconds.
@Suite("Sessions that end", .serialized)
struct SessionEndTests {
    typealias API = SettingsAPITests

    /// A login at acme with its own assertion ID; the session cookie pair.
    static func logIn(_ g: SSOFlowTests.Gateway, nameID: String = "alice@example.test") async throws -> String {
        let start = try await API.request(g, "GET /organizations/acme/sso?return_to=/acme/x HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
        let login = try #require(SSOFlowTests.cookie(start, "ssogate_session_login"))
        let response = try SSOFlowTests.samlResponse(inResponseTo: SSOFlowTests.requestID(in: try #require(start.header("location"))),
                                                     assertionID: "a-\(UUID().uuidString)", nameID: nameID)
        let body = SSOFlowTests.formBody(["SAMLResponse": response])
        let done = try await API.request(g, "POST /organizations/acme/saml/consume HTTP/1.1\r\nHost: hub.example.test\r\nAccept: text/html\r\n"
                                            + "Cookie: ssogate_session_login=\(SSOFlowTests.value(login))\r\n"
                                            + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(done.status == 303, "\(done)")
        return "ssogate_session=" + SSOFlowTests.value(try #require(SSOFlowTests.cookie(done, "ssogate_session")))
    }

    /// Who the upstream was told made a request for acme's content with `cookie` (nil: nobody).
    static func user(_ g: SSOFlowTests.Gateway, _ cookie: String) async throws -> String? {
        let r = try await API.request(g, "GET /acme/private HTTP/1.1\r\nHost: hub.example.test\r\nAccept: application/json\r\nCookie: \(cookie)\r\n\r\n")
        guard r.status == 200 else { return nil }
        return g.upstream.requests.last?.values("x-forwarded-user").first
    }

    static func logout(_ g: SSOFlowTests.Gateway, _ cookie: String, headers: String = "", form: String = "") async throws -> RawHTTPClient.Response {
        try await API.request(g, "POST /_ssogate/logout HTTP/1.1\r\nHost: hub.example.test\r\nCookie: \(cookie)\r\n\(headers)"
                                 + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n\r\n\(form)")
    }

    @Test func logoutNeedsASameOriginProofThenEndsTheSessionEvenForACopyOfTheCookie() async throws {
        let g = try await SSOFlowTests.start()
        let cookie = try await Self.logIn(g)
        #expect(try await Self.user(g, cookie) == "alice@example.test")

        // GET shows the button and ends nothing.
        let page = try await API.request(g, "GET /_ssogate/logout HTTP/1.1\r\nHost: hub.example.test\r\nCookie: \(cookie)\r\n\r\n")
        #expect(page.status == 200 && page.text.contains("id=\"ssogate-logout\"") && page.text.contains("alice@example.test"))
        #expect(try await Self.user(g, cookie) == "alice@example.test")
        // Another site's form, or a POST with no proof at all, ends nothing.
        #expect(try await Self.logout(g, cookie, headers: "Origin: https://evil.example\r\n").status == 403)
        #expect(try await Self.logout(g, cookie, headers: "Sec-Fetch-Site: cross-site\r\n").status == 403)
        #expect(try await Self.logout(g, cookie).status == 403)
        #expect(try await Self.logout(g, cookie, form: "csrf=forged").status == 403)
        #expect(try await Self.user(g, cookie) == "alice@example.test", "still logged in")

        // The page's own form: the cookie is cleared, and a copy of it no longer works.
        let text = page.text
        let start = try #require(text.range(of: "name=\"csrf\" value=\""))
        let csrf = String(text[start.upperBound...].prefix { $0 != "\"" })
        let done = try await Self.logout(g, cookie, form: "csrf=\(csrf.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
        #expect(done.status == 303 && done.header("location") == "/")
        #expect(SSOFlowTests.cookie(done, "ssogate_session")?.contains("Max-Age=0") == true)
        #expect(try await Self.user(g, cookie) == nil, "a copy of the old cookie is refused")
        let audit = try await g.harness.server.storeForTests.events(AuditQuery(organization: "acme", limit: 10, action: "sso.logout"))
        #expect(audit.first?.subject == "alice@example.test" && audit.first?.result == "success")
        await SSOFlowTests().stop(g)
    }

    @Test func logOutEverywhereEndsTheMembersOtherSessionsOnly() async throws {
        let g = try await SSOFlowTests.start()
        let laptop = try await Self.logIn(g), phone = try await Self.logIn(g), bob = try await Self.logIn(g, nameID: "bob@example.test")
        #expect(try await Self.logout(g, laptop, headers: "Sec-Fetch-Site: same-origin\r\n").status == 303)
        #expect(try await Self.user(g, phone) == "alice@example.test", "a plain logout ends this browser's session only")
        #expect(try await Self.logout(g, phone, headers: "Origin: https://hub.example.test\r\n", form: "everywhere=on").status == 303)
        let another = try await Self.logIn(g)
        #expect(try await Self.logout(g, another, headers: "Sec-Fetch-Site: same-origin\r\n", form: "everywhere=on").status == 303)
        #expect(try await Self.user(g, bob) == "bob@example.test", "other members keep theirs")
        await SSOFlowTests().stop(g)
    }

    @Test func everywhereReachesSessionsTheBrowserDoesNotHold() async throws {
        let g = try await SSOFlowTests.start()
        let laptop = try await Self.logIn(g), phone = try await Self.logIn(g)
        #expect(try await Self.logout(g, laptop, headers: "Sec-Fetch-Site: same-origin\r\n", form: "everywhere=on").status == 303)
        #expect(try await Self.user(g, phone) == nil, "the phone's session ended too")
        await SSOFlowTests().stop(g)
    }

    @Test func anAdminEndsAMembersSessionsThroughTheAPIAndTheConsole() async throws {
        let g = try await API.start()
        let token = try await API.token(g, for: "acme")
        let first = try await Self.logIn(g)
        let live = try API.object(try await API.api(g, "GET", "/api/organizations/acme/sessions?subject=alice%40example.test", token: token))
        #expect((live["sessions"] as? [[String: Any]])?.count == 1)
        let revoked = try await API.api(g, "POST", "/api/organizations/acme/sessions/revoke", token: token, json: #"{"subject": "alice@example.test"}"#)
        let count = try API.object(revoked)["ended"] as? Int
        #expect(revoked.status == 200 && count == 1, "\(revoked)")
        #expect(try await Self.user(g, first) == nil)
        #expect(try await API.api(g, "POST", "/api/organizations/acme/sessions/revoke", token: token, json: "{}").status == 422)

        // The console's "End their sessions", for a file-managed organization too.
        let second = try await Self.logIn(g)
        let console = try await ConsoleTests.linkIn(g, organization: "acme")
        let page = try await ConsoleTests.page(g, "/organizations/acme/settings/sso", cookie: console)
        let ended = try await ConsoleTests.post(g, "/organizations/acme/settings/sso/sessions", cookie: console,
                                                form: ["csrf": try ConsoleTests.csrf(page), "subject": "alice@example.test"])
        #expect(ended.status == 200 && ended.text.contains("Ended 1 session of alice@example.test"), "\(ended.text)")
        #expect(try await Self.user(g, second) == nil)
        let audit = try await g.harness.server.storeForTests.events(AuditQuery(organization: "acme", limit: 10, action: "session.revoke"))
        #expect(audit.count == 2 && audit.allSatisfy { $0.subject == "alice@example.test" && $0.result == "success" })
        await SSOFlowTests().stop(g)
    }

    @Test func anIdleSessionEndsAndAnActiveOneIsCarriedOnAMinuteAtATime() async throws {
        let clock = NIOLockedValueBox(SSOFlowTests.now)
        let g = try await SSOFlowTests.start(clock: { clock.withLockedValue { $0 } }, session: ", idle_timeout: 5m")
        let cookie = try await Self.logIn(g)
        func request(_ cookie: String, after seconds: TimeInterval) async throws -> RawHTTPClient.Response {
            clock.withLockedValue { $0 = $0.addingTimeInterval(seconds) }
            return try await API.request(g, "GET /acme/private HTTP/1.1\r\nHost: hub.example.test\r\nAccept: application/json\r\nCookie: \(cookie)\r\n\r\n")
        }
        let early = try await request(cookie, after: 30)
        #expect(early.status == 200 && SSOFlowTests.cookie(early, "ssogate_session") == nil, "not a minute yet: no new cookie")
        let moved = try await request(cookie, after: 40)
        let refreshed = "ssogate_session=" + SSOFlowTests.value(try #require(SSOFlowTests.cookie(moved, "ssogate_session"), "the activity time moved"))
        // 4 minutes later: the old cookie's activity time (login) is past 5 minutes, the new one's is not.
        #expect(try await request(cookie, after: 240).status == 401, "unused for more than 5 minutes")
        #expect(try await request(refreshed, after: 0).status == 200)
        #expect(try await request(refreshed, after: 301).status == 401)
        await SSOFlowTests().stop(g)
    }

    @Test func disablingSSOEndsTheOrganizationsSessionsForGood() async throws {
        let g = try await API.start()
        let token = try await API.token(g)
        // initech set up through the API, a member logs in, then SSO is disabled and enabled again.
        #expect(try await API.api(g, "PUT", "/api/organizations/initech/sso", token: token, json: try API.settingsJSON()).status == 200)
        let url = try #require(try API.object(try await API.api(g, "POST", "/api/organizations/initech/sso/test", token: token))["url"] as? String)
        _ = try await API.runTest(g, url: url, signer: (SSOFlowTests.fixture("rsa-2048.key"), API.goodCertificate), assertion: "d-1")
        #expect(try await API.api(g, "POST", "/api/organizations/initech/sso/enable", token: token).status == 200)
        let login = try await API.logIn(g, signer: (SSOFlowTests.fixture("rsa-2048.key"), API.goodCertificate), assertion: "d-2")
        let cookie = "ssogate_session=" + SSOFlowTests.value(try #require(SSOFlowTests.cookie(login, "ssogate_session")))
        func status() async throws -> Int {
            try await API.request(g, "GET /initech/x HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nCookie: \(cookie)\r\n\r\n").status
        }
        #expect(try await status() == 200)
        #expect(try await API.api(g, "POST", "/api/organizations/initech/sso/disable", token: token).status == 200)
        #expect(try await API.api(g, "POST", "/api/organizations/initech/sso/enable", token: token).status == 200)
        #expect(try await status() == 401, "the cookie from before the disable stays refused")
        await SSOFlowTests().stop(g)
    }

    @Test func aLogoutOnOneGatewayIsRefusedOnAnotherOnTheSameStoreWithinFiveSeconds() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try await Self.logoutReachesTheOtherGateway(store: "sqlite:\(folder.path)/state.db")
    }

    static func logoutReachesTheOtherGateway(store: String, ready: (SSOFlowTests.Gateway) async throws -> Void = { _ in }) async throws {
        let a = try await API.start(store: store)
        let b = try await API.start(store: store)
        try await ready(a)
        try await ready(b)
        let cookie = try await Self.logIn(a)
        #expect(try await Self.user(b, cookie) == "alice@example.test", "one session, both gateways")
        #expect(try await Self.logout(a, cookie, headers: "Sec-Fetch-Site: same-origin\r\n").status == 303)
        let ended = Date()
        var user: String? = "alice@example.test"
        while Date().timeIntervalSince(ended) < 5, user != nil {
            user = try await Self.user(b, cookie)
            if user != nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(user == nil, "B refuses the cookie within 5 s")
        await SSOFlowTests().stop(a)
        await SSOFlowTests().stop(b)
    }
}
