import CryptoCore
import Foundation

/// The session cookie: sealing with a size budget, opening with expiry applied.
public struct SessionCookies: Sendable {
    /// Browsers keep cookies up to 4096 bytes, name and attributes included; the value
    /// gets this much so the whole Set-Cookie stays under the limit.
    public static let maxValueBytes = 3800
    /// At most this many groups (of at most `maxGroupBytes` each) are kept per grant; an
    /// IdP that sends hundreds would otherwise push the cookie over the limit. The role is
    /// computed from all of them before they are cut.
    public static let maxGroups = 32
    public static let maxGroupBytes = 128

    private let codec: SealedCodec<Session>

    /// - Parameter random: nonce source; OpenSSL's CSPRNG unless a test pins it.
    public init(secrets: [[UInt8]], random: @escaping @Sendable (Int) throws -> [UInt8] = { try SecureRandom().bytes($0) }) {
        codec = SealedCodec(secrets: secrets, purpose: "session", random: random)
    }

    /// The session in a cookie value, or nil (no cookie at all) when nothing is left.
    /// Groups are trimmed to the limits first; if the value is still too large, the other
    /// grants lose their groups, then the newest login's, then the other grants go, earliest
    /// expiry first. The grant for `newest` (the login being completed) is never the one
    /// evicted: when it cannot fit even alone, this throws `SessionTooLarge`.
    public func seal(_ session: Session, now: Date, newest: String? = nil) throws -> String? {
        var current = session.pruned(now: now)
        for (org, grant) in current.grants {
            var trimmed = grant
            trimmed.groups = Array(grant.groups.filter { $0.utf8.count <= Self.maxGroupBytes }.prefix(Self.maxGroups))
            current.grants[org] = trimmed
        }
        while !current.grants.isEmpty {
            let value = try codec.seal(current)
            if value.utf8.count <= Self.maxValueBytes { return value }
            let others = current.grants.filter { $0.key != newest }
            if let withGroups = others.keys.sorted().first(where: { !(others[$0]?.groups.isEmpty ?? true) }) {
                current.grants[withGroups]?.groups = []
            } else if let newest, current.grants[newest]?.groups.isEmpty == false {
                current.grants[newest]?.groups = []
            } else if let oldest = others.min(by: { ($0.value.expires, $0.key) < ($1.value.expires, $1.key) }) {
                current.grants.removeValue(forKey: oldest.key)
            } else if newest != nil {
                throw SessionTooLarge(bytes: value.utf8.count)
            } else {
                return nil
            }
        }
        return nil
    }

    /// The session in a cookie value with expired grants removed; nil when it cannot be
    /// opened (tampered, unknown secret) — treated as no session.
    public func open(_ value: Substring, now: Date) -> Session? {
        codec.open(value)?.pruned(now: now)
    }
}

/// A single grant (subject, email, role) too large for a browser cookie even on its own.
public struct SessionTooLarge: Error, CustomStringConvertible {
    public let bytes: Int
    public var description: String { "the session would take \(bytes) bytes, over the \(SessionCookies.maxValueBytes)-byte cookie budget" }
}
