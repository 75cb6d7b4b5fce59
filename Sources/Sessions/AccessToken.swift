import CryptoCore
import Foundation

/// A member's personal access token (docs/CONTRACT.md "Access tokens for CLIs and git"): made
/// from their grant for one organization, shown once as `ssg_…`, kept only as a hash. A
/// request carrying it counts as that grant for that organization only.
public struct AccessToken: Sendable, Equatable, Codable {
    public let id: String
    /// SHA-256 of the token text, lower-case hex.
    public let hash: String
    public let organization: String
    /// The member, and what their grant said when the token was made.
    public let subject: String
    public let email: String?
    public let groups: [String]
    public let role: String?
    /// What the member called it ("laptop git").
    public let name: String
    /// Only `GET`, `HEAD`, `OPTIONS` and git's fetch (`POST .../git-upload-pack`).
    public let readOnly: Bool
    public let created: Int64
    public let expires: Int64
    public var revoked: Bool
    /// Seconds since 1970, to the minute; nil: never used.
    public var lastUsed: Int64?

    public init(id: String, hash: String, organization: String, subject: String, email: String?, groups: [String], role: String?,
                name: String, readOnly: Bool, created: Int64, expires: Int64, revoked: Bool = false, lastUsed: Int64? = nil) {
        self.id = id
        self.hash = hash
        self.organization = organization
        self.subject = subject
        self.email = email
        self.groups = groups
        self.role = role
        self.name = name
        self.readOnly = readOnly
        self.created = created
        self.expires = expires
        self.revoked = revoked
        self.lastUsed = lastUsed
    }

    public static let prefix = "ssg_"

    /// A new token from `grant`: the text to show once, and what to store.
    public static func make(from grant: SessionGrant, organization: String, name: String, readOnly: Bool, now: Int64,
                            lifetime: Int64) throws -> (text: String, token: AccessToken) {
        let text = prefix + Base64.encode(try SecureRandom().bytes(32), alphabet: .url).replacingOccurrences(of: "=", with: "")
        let id = try SecureRandom().bytes(8).map { String(format: "%02x", $0) }.joined()
        return (text, AccessToken(id: id, hash: try hash(text), organization: organization, subject: grant.subject, email: grant.email,
                                  groups: grant.groups, role: grant.role, name: name, readOnly: readOnly, created: now, expires: now + lifetime))
    }

    public static func hash(_ text: String) throws -> String {
        try Digest.sha256(Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The grant the token stands for while it is live.
    public var grant: SessionGrant {
        SessionGrant(id: "token:" + id, subject: subject, email: email, groups: groups, role: role, expires: expires, seen: created)
    }

    /// The token text an `Authorization` field carries: `Bearer ssg_…`, or HTTP Basic with
    /// any user name and the token as password (what git sends). Nil for anything else,
    /// which is the application's own credential.
    public static func credential(_ authorization: Substring) -> Substring? {
        let value = authorization.drop { $0 == " " }
        guard let space = value.firstIndex(of: " ") else { return nil }
        let scheme = value[..<space]
        let rest = value[value.index(after: space)...].drop { $0 == " " }
        if scheme.caseInsensitiveEquals("bearer") { return rest.hasPrefix(prefix) ? rest : nil }
        guard scheme.caseInsensitiveEquals("basic"), rest.utf8.count <= 512, let decoded = Base64.decode(String(rest)),
              let text = String(bytes: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        let password = text[text.index(after: colon)...]
        return password.hasPrefix(prefix) ? Substring(String(password)) : nil
    }
}

extension Substring {
    /// ASCII case-insensitive equality with a lower-case `word`, without allocating.
    func caseInsensitiveEquals(_ word: StaticString) -> Bool {
        guard utf8.count == word.utf8CodeUnitCount else { return false }
        var expected = word.utf8Start
        for byte in utf8 {
            let lower = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            guard lower == expected.pointee else { return false }
            expected += 1
        }
        return true
    }
}
