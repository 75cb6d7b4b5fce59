import Foundation
internal import GRDB
import Sessions

extension SQLiteStore {
    package func createToken(_ token: AccessToken) async throws {
        try await pool.write { db in try Self.store(db, token) }
    }

    package func tokens(changedAfter version: Int64) async throws -> (version: Int64, tokens: [AccessToken]) {
        try await pool.read { db in
            let current = try Int64.fetchOne(db, sql: "SELECT version FROM token_version WHERE id = 1") ?? 0
            let tokens = try String.fetchAll(db, sql: "SELECT token FROM tokens WHERE changed > ? ORDER BY changed", arguments: [version])
            return (current, try tokens.map(Self.decodeToken))
        }
    }

    package func revokeToken(id: String, organization: String) async throws -> AccessToken? {
        try await pool.write { db in
            guard var token = try String.fetchOne(db, sql: "SELECT token FROM tokens WHERE id = ? AND organization = ?", arguments: [id, organization])
                .map(Self.decodeToken) else { return nil }
            token.revoked = true
            try Self.store(db, token)
            return token
        }
    }

    package func revokeTokens(organization: String, subject: String) async throws -> Int {
        try await pool.write { db in
            let tokens = try String.fetchAll(db, sql: "SELECT token FROM tokens WHERE organization = ? AND subject = ?", arguments: [organization, subject])
                .map(Self.decodeToken).filter { !$0.revoked }
            for var token in tokens {
                token.revoked = true
                try Self.store(db, token)
            }
            return tokens.count
        }
    }

    package func listTokens(organization: String, subject: String?) async throws -> [AccessToken] {
        try await pool.read { db in
            var sql = "SELECT token FROM tokens WHERE organization = ?"
            var arguments: StatementArguments = [organization]
            if let subject { sql += " AND subject = ?"; arguments += [subject] }
            return try String.fetchAll(db, sql: sql, arguments: arguments).map(Self.decodeToken).sorted { $0.created > $1.created }
        }
    }

    package func touchTokens(_ lastUsed: [String: Int64]) async throws {
        try await pool.write { db in
            for (id, time) in lastUsed {
                guard var token = try String.fetchOne(db, sql: "SELECT token FROM tokens WHERE id = ?", arguments: [id]).map(Self.decodeToken) else { continue }
                token.lastUsed = max(token.lastUsed ?? 0, time)
                try Self.store(db, token)
            }
        }
    }

    package func purgeTokens(now: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM tokens WHERE expires <= ?", arguments: [now])
            return db.changesCount
        }
    }

    /// Inserts or replaces `token` at the next token version.
    private static func store(_ db: Database, _ token: AccessToken) throws {
        try db.execute(sql: "UPDATE token_version SET version = version + 1 WHERE id = 1")
        let version = try Int64.fetchOne(db, sql: "SELECT version FROM token_version WHERE id = 1") ?? 0
        try db.execute(sql: """
            INSERT INTO tokens (id, hash, organization, subject, expires, changed, token) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET changed = excluded.changed, token = excluded.token
            """, arguments: [token.id, token.hash, token.organization, token.subject, token.expires, version, try encodeToken(token)])
    }

    static func encodeToken(_ token: AccessToken) throws -> String { try encode(token) }

    static func decodeToken(_ text: String) throws -> AccessToken { try decode(AccessToken.self, text) }
}
