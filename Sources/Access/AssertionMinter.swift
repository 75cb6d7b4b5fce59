import Config
import CryptoCore
import Foundation
import JWTKit
import NIOConcurrencyHelpers
import NIOCore
import Sessions

/// Who the upstream is told about in `X-SSO-Assertion`, from the session. On a protected
/// path: the grant of that path's organization (`sub`, `email`, `groups`, `org`, `role`).
/// Elsewhere: no subject of its own, only `grants`, each with the organization that vouched
/// for it (an identity never travels without its organization).
package struct UpstreamClaims: Sendable, Hashable {
    package struct Grant: Sendable, Hashable, Codable {
        package let org: String
        package let sub: String
        package let email: String?
        package let groups: [String]
        package let role: String?

        package init(organization: String, _ grant: SessionGrant) {
            org = organization
            sub = grant.subject
            email = grant.email
            groups = grant.groups
            role = grant.role
        }
    }

    package let subject: String?
    package let email: String?
    package let groups: [String]
    package let organization: String?
    package let role: String?
    /// The organization whose IdP vouched for an external collaborator (`idp_org`).
    package let vouchedBy: String?
    package let grants: [Grant]

    /// `role`: what the access policy gives on the requested path.
    package init(grant: SessionGrant?, organization: String?, role: String? = nil, vouchedBy: String? = nil, grants: [Grant]) {
        subject = grant?.subject
        email = grant?.email
        groups = grant?.groups ?? []
        self.organization = organization
        self.role = role
        self.vouchedBy = vouchedBy
        self.grants = grants
    }
}

/// The ES256 JWT the gateway adds for the upstream (the pattern of Cloudflare Access,
/// Google IAP and Pomerium): `sub`, `email`, `groups`, `org`, `role`, `iss` (the public URL),
/// `aud` (the upstream), `iat` and `exp` (at most five minutes later), with the signing
/// key's `kid` in the header. The keys come from `upstream_assertion.signing_key_files`: the
/// first signs, all are in the JWKS at `/_ssogate/jwks.json`, so a new key can be
/// published before it signs and an old one kept while its tokens live.
///
/// Signing is jwt-kit's (an actor, so asynchronous); a token is reused for the same claims
/// until half its lifetime is gone, so most requests take one from the cache without
/// waiting.
package final class AssertionMinter: Sendable {
    package static let header = "X-SSO-Assertion"
    /// Distinct claim sets kept; past it the cache starts over (a flood of users).
    package static let cacheLimit = 10_000

    package struct Token {
        package let value: String
        /// Reuse until then.
        package let freshUntil: Date
    }

    private let keys = JWTKeyCollection()
    private let parsedKeys: [(key: ES256PrivateKey, kid: JWKIdentifier)]
    /// jwt-kit's collection is an actor, filled on first use (the runtime is built synchronously).
    private let keysAdded = NIOLockedValueBox(false)
    private let signingKID: JWKIdentifier
    package let jwks: [UInt8]
    package let issuer: String
    package let audience: String
    package let ttl: TimeInterval
    private let clock: @Sendable () -> Date
    private let cache = NIOLockedValueBox<[UpstreamClaims: Token]>([:])

    package init(_ settings: GatewayConfiguration.UpstreamAssertion, issuer: String, clock: @escaping @Sendable () -> Date) throws {
        var parsed: [(key: ES256PrivateKey, kid: JWKIdentifier)] = []
        var published: [JWK] = []
        for pem in settings.signingKeyPEMs {
            let key = try ES256PrivateKey(pem: pem)
            guard let parameters = key.publicKey.parameters else { throw JWTError.generic(identifier: "ecdsa", reason: "no public key") }
            let kid = JWKIdentifier(string: Self.thumbprint(x: parameters.x, y: parameters.y))
            parsed.append((key, kid))
            published.append(.ecdsa(.es256, identifier: kid, x: parameters.x, y: parameters.y, curve: .p256))
        }
        guard let first = parsed.first?.kid else { throw JWTError.generic(identifier: "keys", reason: "no signing key") }
        self.parsedKeys = parsed
        self.signingKID = first
        self.jwks = Array(try JSONEncoder().encode(JWKS(keys: published)))
        self.issuer = issuer
        self.audience = settings.audience
        self.ttl = TimeInterval(settings.ttl.components.seconds)
        self.clock = clock
    }

    /// RFC 7638 JWK thumbprint of a P-256 public key, the key's `kid`.
    package static func thumbprint(x: String, y: String) -> String {
        let canonical = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(x)\",\"y\":\"\(y)\"}"
        let digest = (try? Digest.sha256(Array(canonical.utf8))) ?? []
        return Data(digest).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// A token for `claims` that is still fresh, without waiting.
    package func cached(_ claims: UpstreamClaims) -> String? {
        let now = clock()
        return cache.withLockedValue { $0[claims] }.flatMap { $0.freshUntil > now ? $0.value : nil }
    }

    /// Signs a new token for `claims` and keeps it for reuse.
    package func mint(_ claims: UpstreamClaims) async throws -> String {
        // Whole seconds: some JWT libraries refuse fractional NumericDates.
        let now = Date(timeIntervalSince1970: clock().timeIntervalSince1970.rounded(.down))
        let payload = UpstreamAssertionPayload(
            sub: claims.subject.map { SubjectClaim(value: $0) }, email: claims.email, groups: claims.subject == nil ? nil : claims.groups,
            org: claims.organization, idp_org: claims.vouchedBy, role: claims.role, grants: claims.grants.isEmpty ? nil : claims.grants, iss: IssuerClaim(value: issuer), aud: AudienceClaim(value: audience),
            iat: IssuedAtClaim(value: now), exp: ExpirationClaim(value: now.addingTimeInterval(ttl)))
        if !keysAdded.withLockedValue({ $0 }) {
            // Two first requests may both add the keys: the same kid replaces itself.
            for (key, kid) in parsedKeys { await keys.add(ecdsa: key, kid: kid) }
            keysAdded.withLockedValue { $0 = true }
        }
        let token = try await keys.sign(payload, kid: signingKID)
        cache.withLockedValue { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[claims] = Token(value: token, freshUntil: now.addingTimeInterval(ttl / 2))
        }
        return token
    }

    /// The token for `claims` on `loop`: at once from the cache, else once signed.
    package func token(for claims: UpstreamClaims, on loop: EventLoop) -> EventLoopFuture<String> {
        if let token = cached(claims) { return loop.makeSucceededFuture(token) }
        return loop.makeFutureWithTask { try await self.mint(claims) }
    }
}

package struct UpstreamAssertionPayload: JWTPayload {
    package var sub: SubjectClaim?
    package var email: String?
    package var groups: [String]?
    package var org: String?
    /// An external collaborator's own organization, whose IdP vouched for them.
    package var idp_org: String?
    package var role: String?
    /// Off protected paths: every organization's grant, each with its own subject.
    package var grants: [UpstreamClaims.Grant]?
    package var iss: IssuerClaim
    package var aud: AudienceClaim
    package var iat: IssuedAtClaim
    package var exp: ExpirationClaim

    package func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
    }
}
