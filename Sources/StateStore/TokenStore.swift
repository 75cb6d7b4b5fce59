import Foundation
import Sessions

/// Members' access tokens (docs/CONTRACT.md "Access tokens for CLIs and git"), kept as hashes.
/// Every gateway holds the live ones in memory, kept current by polling `tokens(changedAfter:)`:
/// a request's token is looked up without a round trip, and a revocation on one replica is
/// refused on every other within a poll.
package protocol TokenStore: Sendable {
    func createToken(_ token: AccessToken) async throws
    /// Tokens created or changed (revoked, used) after `version`, and the version they are at.
    func tokens(changedAfter version: Int64) async throws -> (version: Int64, tokens: [AccessToken])
    /// Revokes one token of the organization; nil when there is none with that ID.
    func revokeToken(id: String, organization: String) async throws -> AccessToken?
    /// Revokes every token of a member in an organization (their access ended); how many.
    func revokeTokens(organization: String, subject: String) async throws -> Int
    /// The organization's tokens, of one member when given, newest first (revoked included).
    func listTokens(organization: String, subject: String?) async throws -> [AccessToken]
    /// Records when tokens were last used (batched by each gateway, to the minute).
    func touchTokens(_ lastUsed: [String: Int64]) async throws
    /// Drops tokens past their expiry.
    func purgeTokens(now: Int64) async throws -> Int
}
