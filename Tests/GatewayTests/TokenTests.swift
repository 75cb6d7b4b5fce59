import Foundation
@testable import Gateway
import StateStore
import TestSupport
import Testing

/// Access tokens over real sockets (docs/CONTRACT.md "Access tokens for CLIs and git"): made by a
/// member through the API, good for their organization only (Bearer, or Basic as git sends
/// it), never passed upstream, read-only when asked, revoked by the member or with their
/// access, refused on another gateway of the store within 5 s, and guessing is rate-limited.
@Suite("Access tokens", .serialized)
struct TokenTests {
    typealias API = SettingsAPITests

    static func make(_ g: SSOFlowTests.Gateway, cookie: String, name: String = "laptop", readOnly: Bool = false,
                     origin: String? = "https://hub.example.test") async throws -> RawHTTPClient.Response {
        let body = #"{"name": "\#(name)", "read_only": \#(readOnly)}"#
        return try await API.request(g, "POST /api/organizations/acme/tokens HTTP/1.1\r\nHost: hub.example.test\r\nCookie: \(cookie)\r\n"
                                        + (origin.map { "Origin: \($0)\r\n" } ?? "")
                                        + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    static func token(_ r: RawHTTPClient.Response) throws -> (text: String, id: String) {
        let object = try API.object(r)
        return (try #require(object["token"] as? String), try #require(object["id"] as? String))
    }

    /// A request for `path` with `authorization`; the status, and who the upstream was told.
    static func get(_ g: SSOFlowTests.Gateway, _ path: String, _ authorization: String, method: String = "GET") async throws -> (Int, String?) {
        let before = g.upstream.requests.count
        let r = try await API.request(g, "\(method) \(path) HTTP/1.1\r\nHost: hub.example.test\r\nAccept: application/json\r\n"
                                         + "Authorization: \(authorization)\r\nContent-Length: 0\r\n\r\n")
        let seen = g.upstream.requests.count > before ? g.upstream.requests.last : nil
        #expect(seen.map { $0.values("authorization").isEmpty } ?? true, "the upstream never sees the token")
        return (r.status, seen?.values("x-forwarded-user").first)
    }

    @Test func aMembersTokenOpensTheirOrganizationOnlyAsBearerOrBasic() async throws {
        let g = try await SSOFlowTests.start()
        let cookie = try await SessionEndTests.logIn(g)
        #expect(try await Self.make(g, cookie: cookie, origin: nil).status == 403, "a cookie alone is what another site's form has")
        #expect(try await Self.make(g, cookie: cookie, origin: "https://evil.example").status == 403)
        let made = try await Self.make(g, cookie: cookie)
        #expect(made.status == 201, "\(made)")
        let token = try Self.token(made)
        #expect(token.text.hasPrefix("ssg_"))
        #expect(try await Self.get(g, "/acme/private", "Bearer \(token.text)") == (200, "alice@example.test"))
        let basic = Data("git:\(token.text)".utf8).base64EncodedString()
        #expect(try await Self.get(g, "/acme/private", "Basic \(basic)") == (200, "alice@example.test"))
        // Another organization's content: refused, with where to get a token.
        let other = try await API.request(g, "GET /globex/x HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nAuthorization: Bearer \(token.text)\r\n\r\n")
        #expect(other.status == 401 && other.text.contains("invalid_token") && other.text.contains("/organizations/globex/settings/tokens"))
        #expect(other.header("www-authenticate") == "Basic realm=\"ssogate globex\"")
        // The application's own credential on a protected path is refused by default.
        #expect(try await Self.get(g, "/acme/private", "Bearer app-token-123").0 == 401)
        let audit = try await g.harness.server.storeForTests.events(AuditQuery(organization: "acme", limit: 10, action: "token.create"))
        #expect(audit.first?.subject == "alice@example.test")
        await SSOFlowTests().stop(g)
    }

    @Test func anOrganizationCanLetTheApplicationsOwnCredentialsThrough() async throws {
        let g = try await SSOFlowTests.start()
        // globex has app_credentials: pass: forwarded as sent, with no identity.
        let r = try await API.request(g, "GET /globex/api/models HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nAuthorization: Bearer app-token-123\r\n\r\n")
        #expect(r.status == 200)
        #expect(g.upstream.requests.last?.values("authorization") == ["Bearer app-token-123"])
        #expect(g.upstream.requests.last?.values("x-forwarded-user").isEmpty == true)
        // Without a credential globex still asks for SSO.
        let none = try await API.request(g, "GET /globex/api/models HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n")
        #expect(none.status == 401)
        await SSOFlowTests().stop(g)
    }

    @Test func aReadOnlyTokenReadsAndARevokedOneIsRefused() async throws {
        let g = try await SSOFlowTests.start()
        let cookie = try await SessionEndTests.logIn(g)
        let reader = try Self.token(try await Self.make(g, cookie: cookie, name: "ci", readOnly: true))
        #expect(try await Self.get(g, "/acme/private", "Bearer \(reader.text)").0 == 200)
        #expect(try await Self.get(g, "/acme/private", "Bearer \(reader.text)", method: "POST").0 == 403)
        // git's fetch posts its negotiation; its push posts to receive-pack.
        #expect(try await Self.get(g, "/acme/models.git/git-upload-pack", "Bearer \(reader.text)", method: "POST").0 == 200)
        #expect(try await Self.get(g, "/acme/models.git/git-receive-pack", "Bearer \(reader.text)", method: "POST").0 == 403)
        let writer = try Self.token(try await Self.make(g, cookie: cookie))
        let revoked = try await API.request(g, "DELETE /api/organizations/acme/tokens/\(writer.id) HTTP/1.1\r\nHost: h\r\nCookie: \(cookie)\r\n"
                                               + "Origin: https://hub.example.test\r\n\r\n")
        #expect(revoked.status == 200, "\(revoked)")
        #expect(try await Self.get(g, "/acme/private", "Bearer \(writer.text)").0 == 401)
        let list = try API.object(try await API.request(g, "GET /api/organizations/acme/tokens HTTP/1.1\r\nHost: h\r\nCookie: \(cookie)\r\n\r\n"))
        let rows = try #require(list["tokens"] as? [[String: Any]])
        #expect(rows.count == 2 && rows.contains { $0["id"] as? String == writer.id && $0["revoked"] as? Bool == true })
        #expect(!rows.contains { ($0["token"] as? String) != nil }, "a token is shown once, never listed")
        await SSOFlowTests().stop(g)
    }

    @Test func anAdminsRevokeOfAMemberEndsTheirTokensToo() async throws {
        let g = try await API.start()
        let cookie = try await SessionEndTests.logIn(g)
        let token = try Self.token(try await Self.make(g, cookie: cookie))
        #expect(try await Self.get(g, "/acme/x", "Bearer \(token.text)").0 == 200)
        let admin = try await API.token(g, for: "acme")
        #expect(try await API.api(g, "POST", "/api/organizations/acme/sessions/revoke", token: admin, json: #"{"subject": "alice@example.test"}"#).status == 200)
        #expect(try await Self.get(g, "/acme/x", "Bearer \(token.text)").0 == 401)
        await SSOFlowTests().stop(g)
    }

    @Test func guessingTokensIsRateLimitedPerClient() async throws {
        let g = try await SSOFlowTests.start(extra: "logins: {per_client: \"3/m\", total: \"off\"}")
        var statuses: [Int] = []
        for guess in 0..<5 { statuses.append(try await Self.get(g, "/acme/x", "Bearer ssg_guess\(guess)").0) }
        #expect(statuses.prefix(3).allSatisfy { $0 == 401 } && statuses.last == 429, "\(statuses)")
        await SSOFlowTests().stop(g)
    }

    @Test func aTokenRevokedOnOneGatewayIsRefusedOnAnotherWithinFiveSeconds() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let a = try await API.start(store: "sqlite:\(folder.path)/state.db")
        let b = try await API.start(store: "sqlite:\(folder.path)/state.db")
        let cookie = try await SessionEndTests.logIn(a)
        let token = try Self.token(try await Self.make(a, cookie: cookie))
        func onB() async throws -> Int { try await Self.get(b, "/acme/x", "Bearer \(token.text)").0 }
        var status = 0
        let made = Date()
        while Date().timeIntervalSince(made) < 5, status != 200 { status = try await onB(); if status != 200 { try await Task.sleep(for: .milliseconds(200)) } }
        #expect(status == 200, "B knows A's token within 5 s")
        _ = try await API.request(a, "DELETE /api/organizations/acme/tokens/\(token.id) HTTP/1.1\r\nHost: h\r\nCookie: \(cookie)\r\nOrigin: https://hub.example.test\r\n\r\n")
        let revoked = Date()
        while Date().timeIntervalSince(revoked) < 5, status == 200 { status = try await onB(); if status == 200 { try await Task.sleep(for: .milliseconds(200)) } }
        #expect(status == 401, "B refuses it within 5 s of the revoke")
        await SSOFlowTests().stop(a)
        await SSOFlowTests().stop(b)
    }
}
