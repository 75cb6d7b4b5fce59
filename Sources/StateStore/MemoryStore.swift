import Config
import Foundation
import SAML
import Synchronization

/// `store: memory`: everything in this process, gone at exit (the demo, tests). Spent IDs
/// go to the bounded `MemoryReplayCache`; the rest is small (settings per organization,
/// tokens) or bounded (the audit log keeps its newest `auditCapacity` events).
package final class MemoryStore: GatewayStore {
    private struct State {
        var version: Int64 = 0
        var settings: [String: OrganizationSettings] = [:]
        var audit: [AuditEvent] = []
        var tokens: [String: AdminToken] = [:]
        var links: [String: AdminToken] = [:]
    }

    package let replay: MemoryReplayCache
    private let state = Mutex(State())
    /// Sessions, and the endings in the order they happened (MemoryStore+Sessions.swift).
    let sessionState = Mutex(MemorySessions())
    /// Members' access tokens (MemoryStore+Tokens.swift).
    let tokenState = Mutex(MemoryTokens())
    private let auditCapacity: Int

    package init(replay: MemoryReplayCache = MemoryReplayCache(), auditCapacity: Int = 100_000) {
        self.replay = replay
        self.auditCapacity = auditCapacity
    }

    package func spendNow(_ spends: [ReplaySpend], now: Date) -> StoreOutcome? { replay.spendNow(spends, now: now) }
    package func spend(_ spends: [ReplaySpend], now: Date) async -> StoreOutcome { await replay.spend(spends, now: now) }

    package func loadSettings() async throws -> (version: Int64, settings: [String: OrganizationSettings]) {
        state.withLock { ($0.version, $0.settings) }
    }

    package func settingsVersion() async throws -> Int64 { state.withLock { $0.version } }

    package func seed(_ seeds: [String: OrganizationSettings]) async throws {
        state.withLock { s in
            for (organization, seed) in seeds where s.settings[organization] == nil {
                s.settings[organization] = seed
                s.version += 1
            }
        }
    }

    package func saveDraft(_ draft: IdPSettings, organization: String) async throws -> OrganizationSettings {
        state.withLock { s in
            var settings = s.settings[organization] ?? .empty
            settings.draft = draft
            settings.draftTested = nil
            settings.draftRevision += 1
            s.settings[organization] = settings
            s.version += 1
            return settings
        }
    }

    package func recordTest(organization: String, revision: Int64, result: TestResult) async throws -> OrganizationSettings? {
        state.withLock { s in
            guard let next = s.settings[organization]?.recordingTest(revision: revision, result: result) else { return nil }
            s.settings[organization] = next
            s.version += 1
            return next
        }
    }

    package func setEnabled(_ enabled: Bool, organization: String) async throws -> EnableOutcome {
        state.withLock { s in
            guard let next = (s.settings[organization] ?? .empty).enabling(enabled) else { return .notTested }
            s.settings[organization] = next
            s.version += 1
            return .done(next)
        }
    }

    package func setRoleMapping(_ mapping: StoredRoleMapping?, organization: String) async throws -> OrganizationSettings {
        changing(organization) { $0.roleMapping = mapping }
    }

    package func setAccessPolicy(_ policy: AccessPolicy?, organization: String) async throws -> OrganizationSettings {
        changing(organization) { $0.access = policy }
    }

    /// One organization's settings as `change` leaves them, the version moved.
    private func changing(_ organization: String, _ change: (inout OrganizationSettings) -> Void) -> OrganizationSettings {
        state.withLock { s in
            var settings = s.settings[organization] ?? .empty
            change(&settings)
            s.settings[organization] = settings
            s.version += 1
            return settings
        }
    }

    package func record(_ event: AuditEvent) async throws {
        state.withLock { s in
            s.audit.append(event)
            if s.audit.count > auditCapacity { s.audit.removeFirst(s.audit.count - auditCapacity) }
        }
    }

    package func events(_ query: AuditQuery) async throws -> [AuditEvent] {
        state.withLock { s in Array(s.audit.reversed().lazy.filter(query.matches).prefix(query.limit)) }
    }

    package func purgeAudit(before: Int64) async throws -> Int {
        state.withLock { s in
            let count = s.audit.count
            s.audit.removeAll { $0.time < before }
            return count - s.audit.count
        }
    }

    package func storeAdminToken(_ token: AdminToken) async throws {
        state.withLock { $0.tokens[token.hash] = token }
    }

    package func adminToken(hash: String, now: Int64) async throws -> AdminToken? {
        state.withLock { s in s.tokens[hash].flatMap { $0.expires > now ? $0 : nil } }
    }

    package func storeAdminLink(_ link: AdminToken) async throws {
        state.withLock { $0.links[link.hash] = link }
    }

    package func consumeAdminLink(hash: String, now: Int64) async throws -> AdminToken? {
        state.withLock { s in
            guard let link = s.links.removeValue(forKey: hash), link.expires > now else { return nil }
            return link
        }
    }
}
