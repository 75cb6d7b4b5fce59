import Access
import Foundation
import Logging
import Sessions
import StateStore
import Synchronization

/// Keeps `GatewayShared.revocations` current from the state store, and ends sessions
/// (docs/CONTRACT.md "Sessions, logout and Single Logout"): an ending made on any replica is
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

    static func now(_ shared: GatewayShared) -> Int64 { Int64(shared.clock().timeIntervalSince1970) }

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
        // Endings commit in the order of their sequence numbers (SQLite has one writer;
        // PostgreSQL's endings take an advisory lock), so nothing below the cursor can appear.
        var cursor = cursor
        var from = cursor
        do {
            while true {
                let page = try await shared.store.endedSessions(after: from, limit: 5000)
                shared.revocations.add(page.ended.map { ($0.id, $0.expires) }, now: now(shared))
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
        shared.revocations.add(known, now: now(shared))
        do {
            let ended = try await StoreCalls.traced("end_sessions", { try await shared.store.endSessions(which, now: Int64(shared.clock().timeIntervalSince1970)) })
            shared.revocations.add(ended.map { ($0.id, $0.expires) }, now: now(shared))
            return ended
        } catch {
            queue(shared, which, error: error)
            return nil
        }
    }

    /// Keeps an ending the store did not take, for `retryPending`; says so in the log.
    static func queue(_ shared: GatewayShared, _ which: SessionSelector, error: Error? = nil) {
        let queued = shared.pendingEndings.withLock { pending -> Bool in
            guard pending.count < pendingLimit else { return false }
            pending.append(which)
            return true
        }
        shared.logger.error(queued ? "session ending not stored yet: retried until the store answers"
                                   : "session ending lost: the queue of endings waiting for the store is full", metadata: [
            "ending": "\(which)", "error": "\(error.map { "\($0)" } ?? "the store did not answer a moment ago")",
        ])
        shared.metrics.sessionEndingsPending(shared.pendingEndings.withLock { $0.count })
    }

    /// An org admin's "end this member's sessions" (console or API): ended on every gateway,
    /// counted and audited (`session.revoke`). Nil when the store did not answer (queued).
    static func revoke(_ shared: GatewayShared, organization: String, subject: String, actor: String, ip: String?,
                       requestID: String) async -> [SessionRecord]? {
        let ended = await end(shared, .subject(organization: organization, subject: subject))
        if let ended { shared.metrics.sessionsEnded(ended.count, how: "revoke") }
        // Their access tokens end with their access (docs/CONTRACT.md: a token never outlives it).
        if ended != nil, let revoked = try? await StoreCalls.traced("revoke_tokens", { try await shared.store.revokeTokens(organization: organization, subject: subject) }), revoked > 0 {
            await TokenSync.poll(shared, after: -1)
        }
        shared.audit(AuditEvent(time: now(shared), action: "session.revoke", organization: organization, actor: actor,
                                result: ended == nil ? "failure" : "success", reason: ended == nil ? "state_store_unavailable" : nil,
                                subject: subject, ip: ip, requestID: requestID))
        return ended
    }

    static func retryPending(_ shared: GatewayShared) async {
        let pending = shared.pendingEndings.withLock { pending -> [SessionSelector] in
            defer { pending.removeAll() }
            return pending
        }
        guard !pending.isEmpty else { return }
        // In order; the first failure keeps it and the rest for the next pass (each failed
        // attempt waits out the store's timeout).
        var failed: [SessionSelector] = []
        for (index, which) in pending.enumerated() {
            do {
                let ended = try await StoreCalls.traced("end_sessions", { try await shared.store.endSessions(which, now: Int64(shared.clock().timeIntervalSince1970)) })
                shared.revocations.add(ended.map { ($0.id, $0.expires) }, now: now(shared))
            } catch {
                failed = Array(pending[index...])
                break
            }
        }
        shared.pendingEndings.withLock { $0.insert(contentsOf: failed, at: 0) }
        shared.metrics.sessionEndingsPending(shared.pendingEndings.withLock { $0.count })
        if failed.count < pending.count {
            shared.logger.info("queued session endings stored", metadata: ["stored": "\(pending.count - failed.count)", "waiting": "\(failed.count)"])
        }
    }
}
