import Foundation
import PostgresNIO
import Sessions

extension PostgresStore {
    package func createToken(_ token: AccessToken) async throws {
        try await withTimeout(self.timeout) { () async throws -> Void in
            try await self.transaction { connection -> Void in try await self.store(connection, token) }
        }
    }

    package func tokens(changedAfter version: Int64) async throws -> (version: Int64, tokens: [AccessToken]) {
        try await withTimeout(self.timeout) {
            try await self.transaction { connection in
                var current: Int64 = 0
                for try await v in try await connection.query("SELECT version FROM ssogate_token_version WHERE id = 1", logger: self.logger)
                    .decode(Int64.self) { current = v }
                let rows = try await connection.query("SELECT token FROM ssogate_tokens WHERE changed > \(version) AND changed <= \(current) ORDER BY changed",
                                                      logger: self.logger)
                var tokens: [AccessToken] = []
                for try await text in rows.decode(String.self) { tokens.append(try SQLiteStore.decodeToken(text)) }
                return (current, tokens)
            }
        }
    }

    package func revokeToken(id: String, organization: String) async throws -> AccessToken? {
        try await changing("SELECT token FROM ssogate_tokens WHERE id = \(id) AND organization = \(organization) FOR UPDATE") { token in
            token.revoked ? nil : { var revoked = token; revoked.revoked = true; return revoked }()
        }.first
    }

    package func revokeTokens(organization: String, subject: String) async throws -> Int {
        try await changing("SELECT token FROM ssogate_tokens WHERE organization = \(organization) AND subject = \(subject) FOR UPDATE") { token in
            token.revoked ? nil : { var revoked = token; revoked.revoked = true; return revoked }()
        }.count
    }

    package func listTokens(organization: String, subject: String?) async throws -> [AccessToken] {
        try await withTimeout(self.timeout) {
            let rows = try await self.client.query("""
                SELECT token FROM ssogate_tokens WHERE organization = \(organization) AND (\(subject)::text IS NULL OR subject = \(subject))
                """, logger: self.logger)
            var tokens: [AccessToken] = []
            for try await text in rows.decode(String.self) { tokens.append(try SQLiteStore.decodeToken(text)) }
            return tokens.sorted { $0.created > $1.created }
        }
    }

    package func touchTokens(_ lastUsed: [String: Int64]) async throws {
        let ids = Array(lastUsed.keys)
        _ = try await changing("SELECT token FROM ssogate_tokens WHERE id = ANY(\(ids)::text[]) FOR UPDATE") { token in
            var used = token
            used.lastUsed = max(token.lastUsed ?? 0, lastUsed[token.id] ?? 0)
            return used
        }
    }

    package func purgeTokens(now: Int64) async throws -> Int {
        try await withTimeout(self.timeout) {
            var count = 0
            for try await _ in try await self.client.query("DELETE FROM ssogate_tokens WHERE expires <= \(now) RETURNING id", logger: self.logger)
                .decode(String.self) { count += 1 }
            return count
        }
    }

    /// Reads tokens under row locks and stores what `change` makes of each (nil: unchanged),
    /// each at the next token version; returns the changed ones.
    private func changing(_ query: PostgresQuery, _ change: @escaping @Sendable (AccessToken) -> AccessToken?) async throws -> [AccessToken] {
        try await withTimeout(self.timeout) {
            try await self.transaction { connection in
                var found: [AccessToken] = []
                for try await text in try await connection.query(query, logger: self.logger).decode(String.self) {
                    found.append(try SQLiteStore.decodeToken(text))
                }
                var changed: [AccessToken] = []
                for token in found {
                    guard let next = change(token) else { continue }
                    try await self.store(connection, next)
                    changed.append(next)
                }
                return changed
            }
        }
    }

    /// Inserts or replaces `token` at the next token version (the version row's lock orders
    /// concurrent changes, so versions commit in order).
    private func store(_ connection: PostgresConnection, _ token: AccessToken) async throws {
        var version: Int64 = 0
        for try await v in try await connection.query("UPDATE ssogate_token_version SET version = version + 1 WHERE id = 1 RETURNING version",
                                                      logger: logger).decode(Int64.self) { version = v }
        let text = try SQLiteStore.encodeToken(token)
        try await connection.query("""
            INSERT INTO ssogate_tokens (id, hash, organization, subject, expires, changed, token)
            VALUES (\(token.id), \(token.hash), \(token.organization), \(token.subject), \(token.expires), \(version), \(text))
            ON CONFLICT (id) DO UPDATE SET changed = EXCLUDED.changed, token = EXCLUDED.token
            """, logger: logger)
    }
}
