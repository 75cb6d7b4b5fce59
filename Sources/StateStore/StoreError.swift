import Config
import Foundation
import SAML
import Sessions

/// Why a store could not be opened or did not answer; the message names the store, never
/// its credentials.
package struct StoreError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// Runs `body`, or throws when it takes longer than `limit` (a store that hangs must not
/// hold a login forever).
package func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw StoreError("no answer within \(limit)")
        }
        return value
    }
}

/// The store of a gateway whose configured store could not be opened: every login fails
/// closed (`503 state_store_unavailable`), the console's operations fail, sessions keep
/// flowing.
package struct UnavailableStore: GatewayStore {
    package init() {}
    private static var down: StoreError { StoreError("the state store could not be opened at start (see the log)") }
    package func spendNow(_ spends: [ReplaySpend], now: Date) -> StoreOutcome? { .unavailable }
    package func spend(_ spends: [ReplaySpend], now: Date) async -> StoreOutcome { .unavailable }
    package func loadSettings() async throws -> (version: Int64, settings: [String: OrganizationSettings]) { throw Self.down }
    package func settingsVersion() async throws -> Int64 { throw Self.down }
    package func seed(_ seeds: [String: OrganizationSettings]) async throws { throw Self.down }
    package func saveDraft(_ draft: IdPSettings, organization: String) async throws -> OrganizationSettings { throw Self.down }
    package func recordTest(organization: String, revision: Int64, result: TestResult) async throws -> OrganizationSettings? { throw Self.down }
    package func setEnabled(_ enabled: Bool, organization: String) async throws -> EnableOutcome { throw Self.down }
    package func setRoleMapping(_ mapping: StoredRoleMapping?, organization: String) async throws -> OrganizationSettings { throw Self.down }
    package func setAccessPolicy(_ policy: AccessPolicy?, organization: String) async throws -> OrganizationSettings { throw Self.down }
    package func record(_ event: AuditEvent) async throws { throw Self.down }
    package func events(_ query: AuditQuery) async throws -> [AuditEvent] { throw Self.down }
    package func purgeAudit(before: Int64) async throws -> Int { throw Self.down }
    package func storeAdminToken(_ token: AdminToken) async throws { throw Self.down }
    package func adminToken(hash: String, now: Int64) async throws -> AdminToken? { throw Self.down }
    package func storeAdminLink(_ link: AdminToken) async throws { throw Self.down }
    package func consumeAdminLink(hash: String, now: Int64) async throws -> AdminToken? { throw Self.down }
    package func recordSession(_ record: SessionRecord) async throws { throw Self.down }
    package func endSessions(_ which: SessionSelector, now: Int64) async throws -> [SessionRecord] { throw Self.down }
    package func endedSessions(after cursor: Int64, limit: Int) async throws -> (cursor: Int64, ended: [EndedSession]) { throw Self.down }
    package func liveSessions(organization: String, subject: String?, now: Int64, limit: Int) async throws -> [SessionRecord] { throw Self.down }
    package func purgeSessions(now: Int64) async throws -> Int { throw Self.down }
    package func createToken(_ token: AccessToken) async throws { throw Self.down }
    package func tokens(changedAfter version: Int64) async throws -> (version: Int64, tokens: [AccessToken]) { throw Self.down }
    package func revokeToken(id: String, organization: String) async throws -> AccessToken? { throw Self.down }
    package func revokeTokens(organization: String, subject: String) async throws -> Int { throw Self.down }
    package func listTokens(organization: String, subject: String?) async throws -> [AccessToken] { throw Self.down }
    package func touchTokens(_ lastUsed: [String: Int64]) async throws { throw Self.down }
    package func purgeTokens(now: Int64) async throws -> Int { throw Self.down }
}
