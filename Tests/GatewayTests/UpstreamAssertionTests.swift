import Config
import Foundation
@testable import Access
@testable import Gateway
import JWTKit
import Testing
import TestSupport

/// `X-SSO-Assertion`: the upstream verifies the identity with jwt-kit against the JWKS the
/// gateway publishes, and refuses a token signed by another key or past its `exp`.
/// Serialized, and the signed requests are made off the cooperative pool (`offThePool`): a
/// test blocked in a synchronous recv on the pool (two threads here), beside another
/// suite's, left the gateway's signing no thread until the recv timed out.
@Suite("Signed identity for the upstream", .serialized)
struct UpstreamAssertionTests {
    static let extra = """
    upstream_assertion:
      enabled: true
      signing_key_files: ["\(SSOFlowTests.fixture("jwt-p256-a.key"))", "\(SSOFlowTests.fixture("jwt-p256-b.key"))"]
      ttl: 2m
    """

    /// What an upstream reads; it judges `exp` at the gateway's pinned clock.
    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var email: String?
        var groups: [String]
        var org: String?
        var role: String?
        var iss: IssuerClaim
        var aud: AudienceClaim
        var iat: IssuedAtClaim
        var exp: ExpirationClaim

        func verify(using algorithm: some JWTAlgorithm) throws {
            try exp.verifyNotExpired(currentDate: UpstreamAssertionTests.verifiedAt.withLockedValue { $0 })
        }
    }
    static let verifiedAt = NIOLockedDate(SSOFlowTests.now)

    /// The `X-SSO-Assertion` values the upstream received for one request (a forged copy
    /// sent by the client must never be among them).
    /// The request runs off the cooperative pool (`offThePool`): the gateway signs on it.
    static func assertion(_ g: SSOFlowTests.Gateway, cookie: String?, path: String = "/acme/echo") async throws -> String? {
        let cookieLine = cookie.map { "Cookie: \($0)\r\n" } ?? ""
        let harness = g.harness
        let r = try await offThePool {
            try harness.request("GET \(path) HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nX-SSO-Assertion: forged\r\n\(cookieLine)\r\n")
        }
        #expect(r.status == 200, "\(r.status) \(r.text)")
        let values = try #require(g.upstream.requests.last).values("x-sso-assertion")
        #expect(values.count <= 1 && !values.contains("forged"), "\(values)")
        return values.first
    }

    @Test func theUpstreamVerifiesTheIdentityAgainstTheJWKS() async throws {
        let g = try await SSOFlowTests.start(extra: Self.extra)
        let (_, session) = try SSOFlowTests.logIn(g)
        let token = try #require(try await Self.assertion(g, cookie: session))
        // The same identity within half the lifetime: the same token, from the cache.
        #expect(try await Self.assertion(g, cookie: session) == token)

        let jwks = try g.harness.request("GET /_ssogate/jwks.json HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(jwks.status == 200 && jwks.header("content-type") == "application/jwk-set+json")
        let keys = JWTKeyCollection()
        try await keys.add(jwksJSON: jwks.text)
        let claims = try await keys.verify(token, as: Claims.self)
        #expect(claims.sub.value == "alice@example.test")
        #expect(claims.email == "alice@example.test")
        #expect(claims.groups == ["engineering", "hf-admins"])
        #expect(claims.org == "acme" && claims.role == "admin")
        #expect(claims.iss.value == "https://hub.example.test")
        #expect(claims.aud.value == ["http://127.0.0.1:\(g.upstream.port)"])
        #expect(claims.iat.value == SSOFlowTests.now)
        #expect(claims.exp.value.timeIntervalSince(claims.iat.value) == 120)

        // Both keys are published (rotation with overlap); the first signs.
        let published = try JSONDecoder().decode(JWKS.self, from: Data(jwks.text.utf8)).keys
        #expect(published.count == 2)
        let header = try JSONDecoder().decode(JWTHeader.self, from: Data(base64URL: String(token.split(separator: ".")[0]))!)
        #expect(header.alg == "ES256" && header.kid == published[0].keyIdentifier?.string)

        // Past `exp`, the upstream refuses it.
        Self.verifiedAt.set(SSOFlowTests.now.addingTimeInterval(121))
        await #expect(throws: (any Error).self) { _ = try await keys.verify(token, as: Claims.self) }
        Self.verifiedAt.set(SSOFlowTests.now)

        // Re-signed by a key not in the JWKS, under the published kid: refused.
        let forger = JWTKeyCollection()
        await forger.add(ecdsa: ES256PrivateKey(), kid: JWKIdentifier(string: header.kid!))
        var raised = claims
        raised.role = "admin"
        raised.org = "globex"
        let forged = try await forger.sign(raised, kid: JWKIdentifier(string: header.kid!))
        await #expect(throws: (any Error).self) { _ = try await keys.verify(forged, as: Claims.self) }
        await SSOFlowTests().stop(g)
    }

    /// Outside an organization's path (revised rule: an identity never travels without its
    /// organization): no `sub` of its own, each grant with the organization that vouched for it.
    struct GrantsOnly: JWTPayload {
        struct Grant: Codable, Equatable {
            var org: String
            var sub: String
            var email: String?
            var groups: [String]
            var role: String?
        }
        var sub: SubjectClaim?
        var org: String?
        var grants: [Grant]
        var exp: ExpirationClaim

        func verify(using algorithm: some JWTAlgorithm) throws {
            try exp.verifyNotExpired(currentDate: UpstreamAssertionTests.verifiedAt.withLockedValue { $0 })
        }
    }

    @Test func offAnOrganizationsPathTheAssertionListsEachGrantWithItsOrganization() async throws {
        let g = try await SSOFlowTests.start(extra: Self.extra)
        let (_, acme) = try SSOFlowTests.logIn(g)
        let both = try SSOFlowTests.post(g, org: "globex", form: ["SAMLResponse": try SSOFlowTests.samlResponse(
            inResponseTo: nil, assertionID: "id-globex", org: "globex", nameID: "ceo@acme.com", groups: [])], cookies: [acme])
        let cookie = "ssogate_session=" + SSOFlowTests.value(try #require(SSOFlowTests.cookie(both, "ssogate_session")))
        let token = try #require(try await Self.assertion(g, cookie: cookie, path: "/public/echo"))
        let jwks = try g.harness.request("GET /_ssogate/jwks.json HTTP/1.1\r\nHost: h\r\n\r\n")
        let keys = JWTKeyCollection()
        try await keys.add(jwksJSON: jwks.text)
        let claims = try await keys.verify(token, as: GrantsOnly.self)
        #expect(claims.sub == nil && claims.org == nil)
        #expect(claims.grants == [
            .init(org: "acme", sub: "alice@example.test", email: "alice@example.test", groups: ["engineering", "hf-admins"], role: "admin"),
            .init(org: "globex", sub: "ceo@acme.com", email: "alice@example.test", groups: [], role: nil),
        ])
        await SSOFlowTests().stop(g)
    }

    @Test func anonymousRequestsCarryNoAssertionAndClientCopiesAreDropped() async throws {
        let g = try await SSOFlowTests.start(extra: Self.extra)
        #expect(try await Self.assertion(g, cookie: nil, path: "/echo") == nil)
        await SSOFlowTests().stop(g)
    }

    @Test func withoutTheSettingThereIsNoJWKS() async throws {
        let g = try await SSOFlowTests.start()
        #expect(try g.harness.request("GET /_ssogate/jwks.json HTTP/1.1\r\nHost: h\r\n\r\n").status == 404)
        await SSOFlowTests().stop(g)
    }

    @Test func onlyP256KeysAndAtMostFiveMinutesAreAccepted() throws {
        func load(_ assertion: String) -> [String] {
            let yaml = """
            public_url: "https://hub.example.test"
            upstream: "http://127.0.0.1:9000"
            session: {secrets: ["0123456789abcdef0123456789abcdef"]}
            \(assertion)
            """
            do {
                _ = try ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: ".")
                return []
            } catch {
                return error.issues.map(\.description)
            }
        }
        #expect(load("upstream_assertion: {enabled: true, signing_key_files: [\"\(SSOFlowTests.fixture("jwt-p384.key"))\"]}")
            == ["upstream_assertion.signing_key_files[0]: must be a PEM P-256 (prime256v1) private key: the token is signed with ES256"])
        #expect(load("upstream_assertion: {enabled: true, signing_key_files: [\"\(SSOFlowTests.fixture("jwt-p256-a.key"))\"], ttl: 10m}")
            == ["upstream_assertion.ttl: must be at most 5m (the token is a bearer credential to the upstream)"])
        #expect(load("upstream_assertion: {enabled: true}").first?.hasPrefix("upstream_assertion.signing_key_files: needs at least one P-256 key file") == true)
        #expect(load("upstream_assertion: {enabled: false}").isEmpty)
    }
}

/// A date shared between the test and the payload's `verify`.
final class NIOLockedDate: @unchecked Sendable {
    private var value: Date
    private let lock = NSLock()
    init(_ value: Date) { self.value = value }
    func set(_ new: Date) { lock.lock(); value = new; lock.unlock() }
    func withLockedValue<T>(_ body: (Date) -> T) -> T { lock.lock(); defer { lock.unlock() }; return body(value) }
}

extension Data {
    init?(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        self.init(base64Encoded: base64)
    }
}
