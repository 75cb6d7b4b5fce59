import Access
import Foundation
import Logging
import StateStore
import Synchronization

/// Keeps `GatewayShared.revocations` current from the state store, and ends sessions
/// (docs/SPEC.md "Sessions, logout and Single Logout"): an ending made on any replica is
/// refused here within `pollEvery`, without a store round trip per request.
///
/// A store that is down does not stop requests (the set is local) and does not lose an
/// ending made here: its IDs are refused here at once, and the ending waits in
/// `pendingEndings` (bounded) until the store takes it, each retry logged. Other replicas
/// learn of it only then; the log and `ssogate_session_endings_pending` say so.
enum SessionSync {
    static let pollEvery: Duration = .seconds(1)
    static let purgeEvery: Duration = .seconds(60)
    static let pendingLimit = 10_000
    /// Endings are read again this far behind the cursor: two replicas' endings may commit
    /// in the other order than their sequence numbers (PostgreSQL `bigserial`), and reading
    /// one twice costs nothing.
    static let lookBehind: Int64 = 1000

    static func run(_ shared: GatewayShared) async {
        var cursor: Int64 = 0
        var nextPurge = ContinuousClock.now + purgeEvery
        while !Task.isCancelled {
            cursor = await poll(shared, cursor: cursor)
            await retryPending(shared)
            if ContinuousClock.now >= nextPurge {
                nextPurge = ContinuousClock.now + purgeEvery
                let now = Int64(shared.clock().timeIntervalSince1970)
                shared.revocations.purge(now: now)
                _ = try? await shared.store.purgeSessions(now: now)
            }
            try? await Task.sleep(for: pollEvery)
        }
    }

    /// Reads endings after `cursor` (page by page) into the revocation set; the new cursor.
    static func poll(_ shared: GatewayShared, cursor: Int64) async -> Int64 {
        var cursor = cursor
        var from = max(0, cursor - lookBehind)
        do {
            while true {
                let page = try await shared.store.endedSessions(after: from, limit: 5000)
                shared.revocations.add(page.ended.map { ($0.id, $0.expires) })
                cursor = max(cursor, page.cursor)
                guard page.ended.count == 5000 else { break }
                from = page.cursor
            }
        } catch {
            shared.logger.debug("session endings not read", metadata: ["error": "\(error)"])
        }
        return cursor
    }

    /// Ends the sessions `which` selects: in the store (so every replica refuses them), and
    /// here at once. `known` are IDs (with expiries) ended here even if the store is down.
    /// Returns the sessions ended, or nil when the store did not answer (then queued).
    @discardableResult
    static func end(_ shared: GatewayShared, _ which: SessionSelector, known: [(id: String, expires: Int64)] = []) async -> [SessionRecord]? {
        shared.revocations.add(known)
        do {
            let ended = try await shared.store.endSessions(which, now: Int64(shared.clock().timeIntervalSince1970))
            shared.revocations.add(ended.map { ($0.id, $0.expires) })
            return ended
        } catch {
            let queued = shared.pendingEndings.withLock { pending -> Bool in
                guard pending.count < pendingLimit else { return false }
                pending.append(which)
                return true
            }
            shared.logger.error(queued ? "session ending not stored yet: in force on this gateway, retried until the store answers"
                                       : "session ending lost: the queue of endings waiting for the store is full", metadata: [
                "ending": "\(which)", "error": "\(error)",
            ])
            shared.metrics.sessionEndingsPending(shared.pendingEndings.withLock { $0.count })
            return nil
        }
    }

    static func retryPending(_ shared: GatewayShared) async {
        let pending = shared.pendingEndings.withLock { pending -> [SessionSelector] in
            defer { pending.removeAll() }
            return pending
        }
        guard !pending.isEmpty else { return }
        var failed: [SessionSelector] = []
        for which in pending {
            do {
                let ended = try await shared.store.endSessions(which, now: Int64(shared.clock().timeIntervalSince1970))
                shared.revocations.add(ended.map { ($0.id, $0.expires) })
            } catch {
                failed.append(which)
            }
        }
        shared.pendingEndings.withLock { $0.insert(contentsOf: failed, at: 0) }
        shared.metrics.sessionEndingsPending(shared.pendingEndings.withLock { $0.count })
        if failed.count < pending.count {
            shared.logger.info("queued session endings stored", metadata: ["stored": "\(pending.count - failed.count)", "waiting": "\(failed.count)"])
        }
    }
}
