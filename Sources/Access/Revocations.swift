import Synchronization

/// The session IDs this gateway knows were ended (logout, Single Logout, an admin's revoke,
/// SSO disabled), as last read from the state store or ended here, each until its session
/// would have expired anyway. Requests ask it without a round trip to the store.
///
/// Asking costs a lock only when a cookie is opened: the per-loop session caches keep what
/// they opened while `generation` stays the same, and every addition moves it (one atomic
/// load per request).
package final class Revocations: Sendable {
    private let ended = Mutex<[String: Int64]>([:])
    private let moves = Atomic<UInt64>(0)

    package init() {}

    /// Moves whenever an ID is added.
    package var generation: UInt64 { moves.load(ordering: .acquiring) }

    package var count: Int { ended.withLock { $0.count } }

    package func contains(_ id: String) -> Bool { ended.withLock { $0[id] != nil } }

    package func containsAny(_ ids: [String]) -> Bool {
        ended.withLock { known in ids.contains { known[$0] != nil } }
    }

    /// Adds ended sessions (ID, expiry in seconds since 1970) that had not expired at `now`;
    /// returns how many were new (only those move `generation`, which empties the caches).
    @discardableResult
    package func add(_ sessions: [(id: String, expires: Int64)], now: Int64) -> Int {
        let added = ended.withLock { known in
            var added = 0
            for session in sessions where session.expires > now && known.updateValue(session.expires, forKey: session.id) == nil { added += 1 }
            return added
        }
        if added > 0 { moves.add(1, ordering: .releasing) }
        return added
    }

    /// Forgets IDs whose sessions have expired (their cookies no longer open).
    package func purge(now: Int64) {
        ended.withLock { known in known = known.filter { $0.value > now } }
    }
}
