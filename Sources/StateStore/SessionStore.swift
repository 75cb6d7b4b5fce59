import Foundation
import Sessions

/// Sessions begun by logins, and which of them were ended (docs/CONTRACT.md "Sessions, logout
/// and Single Logout"). The session cookie stays sealed and carries each grant's session
/// ID; a gateway refuses the IDs this store lists as ended, which it polls (so an ending on
/// one replica holds on every other within seconds) without a round trip per request.
package protocol SessionStore: Sendable {
    /// Records the session a login began.
    func recordSession(_ record: SessionRecord) async throws
    /// The same at once, when the store needs no I/O for it (memory): true; nil otherwise.
    func recordSessionNow(_ record: SessionRecord) -> Bool?
    /// Ends the live sessions `which` selects; returns those it ended (one already ended or
    /// expired is not ended again).
    func endSessions(_ which: SessionSelector, now: Int64) async throws -> [SessionRecord]
    /// Sessions ended after `cursor`, oldest first, and the cursor past them. Start at 0.
    func endedSessions(after cursor: Int64, limit: Int) async throws -> (cursor: Int64, ended: [EndedSession])
    /// Live sessions (not ended, not expired) of an organization, of one subject when given,
    /// newest first.
    func liveSessions(organization: String, subject: String?, now: Int64, limit: Int) async throws -> [SessionRecord]
    /// Drops sessions and endings whose time is over; returns how many rows went.
    func purgeSessions(now: Int64) async throws -> Int
}

extension SessionStore {
    package func recordSessionNow(_ record: SessionRecord) -> Bool? { nil }
}

extension SessionRecord {
    func selected(by which: SessionSelector) -> Bool {
        switch which {
        case .ids(let ids): return ids.contains(id)
        case .subject(let organization, let subject): return self.organization == organization && self.subject == subject
        case .sessionIndexes(let organization, let subject, let indexes):
            return self.organization == organization && self.subject == subject
                && (indexes.isEmpty || sessionIndex.map(indexes.contains) == true)
        case .organization(let organization): return self.organization == organization
        }
    }
}

/// Which sessions an ending ends.
package enum SessionSelector: Sendable, Equatable {
    /// These (a browser's logout).
    case ids([String])
    /// Every session of a member in an organization ("log out everywhere", an admin's revoke).
    case subject(organization: String, subject: String)
    /// Those of a NameID with one of these SessionIndexes, or all of its sessions when none
    /// is given (an IdP's LogoutRequest).
    case sessionIndexes(organization: String, subject: String, indexes: [String])
    /// Every session of an organization (SSO disabled).
    case organization(String)
}

/// An ended session's ID, and until when a cookie could still carry it.
package struct EndedSession: Sendable, Equatable {
    package let id: String
    package let expires: Int64
    package init(id: String, expires: Int64) {
        self.id = id
        self.expires = expires
    }
}
