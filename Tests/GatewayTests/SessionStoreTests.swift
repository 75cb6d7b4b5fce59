import Foundation
import Sessions
import StateStore
import Testing

/// Session records and their endings, the same rules for each store (docs/CONTRACT.md
/// "Sessions, logout and Single Logout"): endings select by ID, member, SessionIndex or
/// organization; each is listed once, in order, for replicas to poll; expired ones go.
@Suite("State stores: sessions and their endings", .serialized)
struct SessionStoreTests {
    typealias Kind = StateStoreTests.Kind
    /// Before the gateway tests' pinned clock (2026-01-01): this suite's purges, on the
    /// PostgreSQL database other suites share, must not take their sessions with them.
    static let now: Int64 = 1_700_000_000

    static func record(_ org: String, _ subject: String, index: String? = nil, created: Int64 = now, expires: Int64 = now + 3600) -> SessionRecord {
        SessionRecord(id: StateStoreTests.unique("s"), organization: org, subject: subject, sessionIndex: index, created: created, expires: expires)
    }

    /// Every ending after `cursor`, paging through; only IDs of `mine` when given (other
    /// suites end sessions in a shared PostgreSQL database meanwhile).
    static func endings(_ store: GatewayStore, after cursor: Int64, mine: [SessionRecord]? = nil) async throws -> (cursor: Int64, ids: [String]) {
        var cursor = cursor
        var ids: [String] = []
        while true {
            let page = try await store.endedSessions(after: cursor, limit: 2)
            ids += page.ended.map(\.id).filter { id in mine.map { $0.contains { $0.id == id } } ?? true }
            guard !page.ended.isEmpty else { return (cursor, ids) }
            cursor = page.cursor
        }
    }

    @Test(arguments: StateStoreTests.kinds)
    func endingsSelectWhatTheySayAndAreListedOnceInOrder(kind: Kind) async throws {
        let (store, finish) = try await StateStoreTests.open(kind)
        let org = StateStoreTests.unique("org"), other = StateStoreTests.unique("org")
        let a1 = Self.record(org, "alice", index: "idx-1"), a2 = Self.record(org, "alice", index: "idx-2", created: Self.now + 1)
        let b = Self.record(org, "bob"), elsewhere = Self.record(other, "alice")
        for r in [a1, a2, b, elsewhere] { try await store.recordSession(r) }
        let start = try await Self.endings(store, after: 0).cursor

        #expect(try await store.liveSessions(organization: org, subject: "alice", now: Self.now, limit: 10).map(\.id) == [a2.id, a1.id], "newest first")
        // An IdP's logout names a SessionIndex: only that session ends.
        #expect(try await store.endSessions(.sessionIndexes(organization: org, subject: "alice", indexes: ["idx-1"]), now: Self.now).map(\.id) == [a1.id])
        // A member's revoke ends the rest of theirs in that organization, not elsewhere.
        #expect(try await store.endSessions(.subject(organization: org, subject: "alice"), now: Self.now).map(\.id) == [a2.id])
        #expect(try await store.endSessions(.subject(organization: org, subject: "alice"), now: Self.now).isEmpty, "ended once")
        #expect(try await store.endSessions(.ids([b.id, "unknown"]), now: Self.now).map(\.id) == [b.id])
        #expect(try await store.liveSessions(organization: org, subject: nil, now: Self.now, limit: 10).isEmpty)
        #expect(try await store.liveSessions(organization: other, subject: nil, now: Self.now, limit: 10).map(\.id) == [elsewhere.id])

        let mine = [a1, a2, b, elsewhere]
        let listed = try await Self.endings(store, after: start, mine: mine)
        #expect(listed.ids == [a1.id, a2.id, b.id], "in the order they ended")
        #expect(try await Self.endings(store, after: listed.cursor, mine: mine).ids.isEmpty, "nothing after the cursor")
        // Disabling the other organization ends its sessions.
        #expect(try await store.endSessions(.organization(other), now: Self.now).map(\.id) == [elsewhere.id])
        #expect(try await Self.endings(store, after: listed.cursor, mine: mine).ids == [elsewhere.id])
        await finish()
    }

    @Test(arguments: StateStoreTests.kinds)
    func expiredSessionsAreNotEndedAndArePurged(kind: Kind) async throws {
        let (store, finish) = try await StateStoreTests.open(kind)
        let org = StateStoreTests.unique("org")
        let old = Self.record(org, "carol", expires: Self.now + 10), live = Self.record(org, "carol", expires: Self.now + 3600)
        try await store.recordSession(old)
        try await store.recordSession(live)
        let start = try await Self.endings(store, after: 0).cursor
        #expect(try await store.endSessions(.subject(organization: org, subject: "carol"), now: Self.now + 20).map(\.id) == [live.id],
                "an expired session needs no ending")
        #expect(try await store.purgeSessions(now: Self.now + 20) >= 1)
        #expect(try await store.liveSessions(organization: org, subject: nil, now: Self.now, limit: 10).isEmpty, "the expired record went")
        #expect(try await Self.endings(store, after: start, mine: [old, live]).ids == [live.id], "a live ending stays listed")
        _ = try await store.purgeSessions(now: Self.now + 7200)
        #expect(try await Self.endings(store, after: start, mine: [old, live]).ids.isEmpty, "and goes when its session would have expired")
        await finish()
    }
}
