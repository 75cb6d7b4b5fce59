import Config
import CryptoCore
import Foundation
import SAML

/// Everything the gateway keeps in its state store (docs/CONTRACT.md "State store"), one
/// interface with three implementations held to the same tests: memory, SQLite, PostgreSQL.
package typealias GatewayStore = ReplayStore & SettingsStore & AuditLog & AdminTokens & AdminLinks & SessionStore & TokenStore

/// Organization settings edited in the console and the API.
package protocol SettingsStore: Sendable {
    /// Every stored organization's settings, and the version they are at.
    func loadSettings() async throws -> (version: Int64, settings: [String: OrganizationSettings])
    /// Moves on every change, on any replica: the others poll it to pick changes up.
    func settingsVersion() async throws -> Int64
    /// Stores each seed whose organization has no settings yet (the configuration file's).
    func seed(_ seeds: [String: OrganizationSettings]) async throws
    /// Saves new IdP settings as the organization's draft (its last test result dropped).
    func saveDraft(_ draft: IdPSettings, organization: String) async throws -> OrganizationSettings
    /// Records a test of the draft saved as `revision`: a pass makes it the active settings.
    /// Nil when that draft was replaced meanwhile (the result is about settings nobody keeps).
    func recordTest(organization: String, revision: Int64, result: TestResult) async throws -> OrganizationSettings?
    /// The "Enable SAML SSO" toggle; enabling needs active settings that passed a test.
    func setEnabled(_ enabled: Bool, organization: String) async throws -> EnableOutcome
    /// The role mapping set in the console (nil: back to the file's), in force at once.
    func setRoleMapping(_ mapping: StoredRoleMapping?, organization: String) async throws -> OrganizationSettings
    /// The access policy set in the console (nil: the file's again), in force at once.
    func setAccessPolicy(_ policy: AccessPolicy?, organization: String) async throws -> OrganizationSettings
}

package enum EnableOutcome: Sendable, Equatable {
    case done(OrganizationSettings)
    /// Nothing to enable that passed a test (`409 not_tested`).
    case notTested
}

/// Who did what (docs/CONTRACT.md's audit actions), newest first when read.
package protocol AuditLog: Sendable {
    func record(_ event: AuditEvent) async throws
    func events(_ query: AuditQuery) async throws -> [AuditEvent]
    /// Drops events older than `before` (seconds since 1970); returns how many.
    func purgeAudit(before: Int64) async throws -> Int
}

package struct AuditEvent: Sendable, Equatable, Codable {
    /// Seconds since 1970.
    package var time: Int64
    /// `sso.login`, `sso.settings.update`, `sso.test`, `sso.enable`, `sso.disable`,
    /// `admin.link`, `token.create`, `token.revoke`, `session.revoke`, `sso.logout`.
    package var action: String
    package var organization: String
    /// Who acted: `admin-token:ID`, `admin-link`, or a member's subject.
    package var actor: String?
    /// `success` or `failure`.
    package var result: String
    /// The reason code of a failure (`signature_invalid`); never an assertion's content.
    package var reason: String?
    /// Whom it concerns (the member who logged in).
    package var subject: String?
    package var ip: String?
    package var requestID: String?

    enum CodingKeys: String, CodingKey {
        case time, action, organization, actor, result, reason, subject, ip, requestID = "request_id"
    }

    package init(time: Int64, action: String, organization: String, actor: String?, result: String, reason: String?,
                 subject: String?, ip: String?, requestID: String?) {
        self.time = time
        self.action = action
        self.organization = organization
        self.actor = actor
        self.result = result
        self.reason = reason
        self.subject = subject
        self.ip = ip
        self.requestID = requestID
    }
}

package struct AuditQuery: Sendable, Equatable {
    package var organization: String
    package var limit: Int
    package var action: String?
    package var result: String?
    /// Seconds since 1970, inclusive.
    package var since: Int64?
    package var until: Int64?

    package init(organization: String, limit: Int, action: String? = nil, result: String? = nil, since: Int64? = nil, until: Int64? = nil) {
        self.organization = organization
        self.limit = max(1, min(limit, 10_000))
        self.action = action
        self.result = result
        self.since = since
        self.until = until
    }

    func matches(_ event: AuditEvent) -> Bool {
        event.organization == organization && (action.map { $0 == event.action } ?? true) && (result.map { $0 == event.result } ?? true)
            && (since.map { event.time >= $0 } ?? true) && (until.map { event.time <= $0 } ?? true)
    }
}

/// Bearer tokens of `ssogate admin-token`: one organization's settings API. Only a hash
/// is stored; the token is shown once.
package protocol AdminTokens: Sendable {
    func storeAdminToken(_ token: AdminToken) async throws
    /// The live token whose hash this is.
    func adminToken(hash: String, now: Int64) async throws -> AdminToken?
}

/// One-time links of `ssogate admin-link`: they open the console for whoever follows
/// them first, within their lifetime. Stored hashed, like tokens.
package protocol AdminLinks: Sendable {
    func storeAdminLink(_ link: AdminToken) async throws
    /// The link, marked used, when it is live and was not used yet; nil otherwise (a second
    /// use, however close to the first, gets nil).
    func consumeAdminLink(hash: String, now: Int64) async throws -> AdminToken?
}

/// A stored credential (an admin token, or a one-time admin link): what it opens, until when.
package struct AdminToken: Sendable, Equatable {
    package let id: String
    package let organization: String
    /// SHA-256 of the token text, lower-case hex.
    package let hash: String
    package let created: Int64
    package let expires: Int64

    /// A new token for `organization`: the text to show once, and what to store.
    package static func make(organization: String, now: Int64, lifetime: Int64, prefix: String = "ssga_") throws -> (text: String, token: AdminToken) {
        let secret = try SecureRandom().bytes(32)
        let text = prefix + Base64.encode(secret, alphabet: .url).replacingOccurrences(of: "=", with: "")
        let id = try SecureRandom().bytes(6).map { String(format: "%02x", $0) }.joined()
        return (text, AdminToken(id: id, organization: organization, hash: try hash(text), created: now, expires: now + lifetime))
    }

    package static func hash(_ text: String) throws -> String {
        try Digest.sha256(Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    package init(id: String, organization: String, hash: String, created: Int64, expires: Int64) {
        self.id = id
        self.organization = organization
        self.hash = hash
        self.created = created
        self.expires = expires
    }
}

extension OrganizationSettings {
    /// A new organization's settings: nothing active, nothing drafted, off.
    package static var empty: OrganizationSettings {
        OrganizationSettings(active: nil, activeTested: nil, draft: nil, draftTested: nil, draftRevision: 0, enabled: false)
    }

    /// The change `recordTest` makes, shared by every store.
    package func recordingTest(revision: Int64, result: TestResult) -> OrganizationSettings? {
        guard let draft, draftRevision == revision else { return nil }
        var next = self
        if result.ok {
            next.active = draft
            next.activeTested = result
            next.draft = nil
            next.draftTested = nil
        } else {
            next.draftTested = result
        }
        return next
    }

    /// The change `setEnabled` makes, shared by every store.
    package func enabling(_ enabled: Bool) -> OrganizationSettings? {
        // Enabling needs active settings that passed a test here (settings the file seeded
        // are in force as the file says, but the console enables only what it saw work).
        if enabled, active == nil || activeTested?.ok != true { return nil }
        var next = self
        next.enabled = enabled
        return next
    }
}
