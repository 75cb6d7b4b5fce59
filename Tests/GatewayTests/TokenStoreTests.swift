import Foundation
import Sessions
import StateStore
import Testing

/// Access tokens in each store: kept by hash, every change listed once after the version
/// a gateway last read, revoked singly or with their member's access, used times kept,
/// expired ones dropped.
@Suite("State stores: access tokens", .serialized)
struct TokenStoreTests {
    typealias Kind = StateStoreTests.Kind
    static let now: Int64 = SessionStoreTests.now

    static func token(_ org: String, _ subject: String, expires: Int64 = now + 86400) -> AccessToken {
        let id = StateStoreTests.unique("t")
        return AccessToken(id: id, hash: "hash-" + id, organization: org, subject: subject, email: subject, groups: ["g"], role: "write",
                           name: "laptop", readOnly: false, created: now, expires: expires)
    }

    @Test(arguments: StateStoreTests.kinds)
    func changesAreListedAfterTheVersionAGatewayRead(kind: Kind) async throws {
        let (store, finish) = try await StateStoreTests.open(kind)
        let org = StateStoreTests.unique("org")
        let start = try await store.tokens(changedAfter: 0).version
        let a = Self.token(org, "alice"), b = Self.token(org, "alice"), c = Self.token(org, "bob")
        for t in [a, b, c] { try await store.createToken(t) }
        let first = try await store.tokens(changedAfter: start)
        #expect(first.tokens.filter { $0.organization == org }.map(\.id) == [a.id, b.id, c.id])
        #expect(try await store.tokens(changedAfter: first.version).tokens.filter { $0.organization == org }.isEmpty)

        #expect(try await store.revokeToken(id: a.id, organization: "another") == nil, "only in its own organization")
        #expect(try await store.revokeToken(id: a.id, organization: org)?.revoked == true)
        #expect(try await store.revokeTokens(organization: org, subject: "alice") == 1, "b; a was revoked already")
        try await store.touchTokens([c.id: Self.now + 60])
        let changed = try await store.tokens(changedAfter: first.version).tokens.filter { $0.organization == org }
        #expect(changed.map(\.id) == [a.id, b.id, c.id] && changed[0].revoked && changed[1].revoked && changed[2].lastUsed == Self.now + 60)
        #expect(try await store.listTokens(organization: org, subject: "bob").map(\.id) == [c.id])
        #expect(try await store.listTokens(organization: org, subject: nil).count == 3)
        await finish()
    }

    @Test(arguments: StateStoreTests.kinds)
    func expiredTokensArePurged(kind: Kind) async throws {
        let (store, finish) = try await StateStoreTests.open(kind)
        let org = StateStoreTests.unique("org")
        let old = Self.token(org, "carol", expires: Self.now + 10), live = Self.token(org, "carol")
        try await store.createToken(old)
        try await store.createToken(live)
        #expect(try await store.purgeTokens(now: Self.now + 20) >= 1)
        #expect(try await store.listTokens(organization: org, subject: nil).map(\.id) == [live.id])
        await finish()
    }
}
