import CryptoCore
import Foundation

/// One organization's grant: who logged in through its IdP, until when.
public struct SessionGrant: Codable, Sendable, Equatable {
    /// The session's ID in the state store (128 random bits, hex): what logout, Single
    /// Logout and an admin's revoke end. A cookie sealed before sessions had IDs does not
    /// open (its holder logs in again).
    public var id: String
    public var subject: String
    public var email: String?
    public var groups: [String]
    public var role: String?
    /// The assertion's SessionIndex and NameID Format, which a Single Logout names.
    public var sessionIndex: String?
    public var nameIDFormat: String?
    /// Seconds since 1970; the grant is void from then on.
    public var expires: Int64
    /// When the grant was last used, to the minute (seconds since 1970): with an idle
    /// timeout, the cookie is sealed again when this is a minute old.
    public var seen: Int64

    public init(id: String, subject: String, email: String?, groups: [String], role: String?, sessionIndex: String? = nil,
                nameIDFormat: String? = nil, expires: Int64, seen: Int64) {
        self.nameIDFormat = nameIDFormat
        self.id = id
        self.subject = subject
        self.email = email
        self.groups = groups
        self.role = role
        self.sessionIndex = sessionIndex
        self.expires = expires
        self.seen = seen
    }

    /// A new session ID.
    public static func newID() throws -> String {
        try SecureRandom().bytes(16).map { String(format: "%02x", $0) }.joined()
    }
}

/// The session cookie's content: grants by organization name. A grant for one
/// organization authorizes nothing of another (docs/CONTRACT.md "A request for protected content").
public struct Session: Codable, Sendable, Equatable {
    public var grants: [String: SessionGrant]

    public init(grants: [String: SessionGrant] = [:]) { self.grants = grants }

    /// The grant for `organization` if it has not expired.
    public func grant(for organization: String, now: Date) -> SessionGrant? {
        guard let grant = grants[organization], grant.expires > Int64(now.timeIntervalSince1970) else { return nil }
        return grant
    }

    /// Without the grants that have expired.
    public func pruned(now: Date) -> Session {
        Session(grants: grants.filter { $0.value.expires > Int64(now.timeIntervalSince1970) })
    }
}

/// The short-lived cookie that binds an SP-initiated login to the browser that started
/// it (rule 8): which request ID it waits for, and where to go afterwards.
public struct LoginState: Codable, Sendable, Equatable {
    public var organization: String
    public var requestID: String
    public var returnTo: String
    /// `?test=1`: show the diagnostic page, issue no session.
    public var test: Bool
    public var expires: Int64
    /// A test of the organization's draft settings (console "Update and Test"): the draft's
    /// revision, so the result is recorded against the draft that was tested.
    public var draft: Int64?

    public init(organization: String, requestID: String, returnTo: String, test: Bool, expires: Int64, draft: Int64? = nil) {
        self.organization = organization
        self.requestID = requestID
        self.returnTo = returnTo
        self.test = test
        self.expires = expires
        self.draft = draft
    }
}

/// One session: a member's grant for one organization, from one login.
public struct SessionRecord: Sendable, Equatable {
    /// Random, 128 bits as hex: what the cookie carries.
    public let id: String
    public let organization: String
    /// The NameID the IdP asserted.
    public let subject: String
    /// The assertion's `SessionIndex`, which a Single Logout names.
    public let sessionIndex: String?
    public let created: Int64
    public let expires: Int64

    public init(id: String, organization: String, subject: String, sessionIndex: String?, created: Int64, expires: Int64) {
        self.id = id
        self.organization = organization
        self.subject = subject
        self.sessionIndex = sessionIndex
        self.created = created
        self.expires = expires
    }
}
