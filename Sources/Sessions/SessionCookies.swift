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
    /// Groups are trimmed to the limits first; if the value is still too large, grants
    /// lose their groups, and then the oldest grants go, so the newest login always fits.
    public func seal(_ session: Session, now: Date) throws -> String? {
        var current = session.pruned(now: now)
        for (org, grant) in current.grants {
            var trimmed = grant
            trimmed.groups = Array(grant.groups.filter { $0.utf8.count <= Self.maxGroupBytes }.prefix(Self.maxGroups))
            current.grants[org] = trimmed
        }
        while !current.grants.isEmpty {
            let value = try codec.seal(current)
            if value.utf8.count <= Self.maxValueBytes { return value }
            if let withGroups = current.grants.first(where: { !$0.value.groups.isEmpty }) {
                current.grants[withGroups.key]?.groups = []
            } else if let oldest = current.grants.min(by: { $0.value.expires < $1.value.expires }) {
                current.grants.removeValue(forKey: oldest.key)
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
