internal import GRDB
import Sessions

extension SQLiteStore {
    package func recordSession(_ record: SessionRecord) async throws {
        try await withTimeout(Self.timeout) {
            try await self.pool.write { db in
                try db.execute(sql: "INSERT INTO sessions (id, organization, subject, session_index, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [record.id, record.organization, record.subject, record.sessionIndex, record.created, record.expires])
            }
        }
    }

    package func endSessions(_ which: SessionSelector, now: Int64) async throws -> [SessionRecord] {
        var sql = "UPDATE sessions SET ended = ? WHERE ended IS NULL AND expires > ?"
        var arguments: StatementArguments = [now, now]
        switch which {
        case .ids(let ids):
            guard !ids.isEmpty else { return [] }
            sql += " AND id IN (\(ids.map { _ in "?" }.joined(separator: ",")))"
            arguments += StatementArguments(ids)
        case .subject(let organization, let subject):
            sql += " AND organization = ? AND subject = ?"
            arguments += [organization, subject]
        case .sessionIndexes(let organization, let subject, let indexes):
            sql += " AND organization = ? AND subject = ?"
            arguments += [organization, subject]
            if !indexes.isEmpty {
                sql += " AND session_index IN (\(indexes.map { _ in "?" }.joined(separator: ",")))"
                arguments += StatementArguments(indexes)
            }
        case .organization(let organization):
            sql += " AND organization = ?"
            arguments += [organization]
        }
        sql += " RETURNING id, organization, subject, session_index, created, expires"
        let statement = sql
        let values = arguments
        return try await withTimeout(Self.timeout) {
            try await self.pool.write { db in
                let ended = try Row.fetchAll(db, sql: statement, arguments: values).map(Self.session)
                for record in ended.sorted(by: { $0.created < $1.created }) {
                    try db.execute(sql: "INSERT INTO ended_sessions (id, expires) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                                   arguments: [record.id, record.expires])
                }
                return ended
            }
        }
    }

    package func endedSessions(after cursor: Int64, limit: Int) async throws -> (cursor: Int64, ended: [EndedSession]) {
        try await pool.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT seq, id, expires FROM ended_sessions WHERE seq > ? ORDER BY seq LIMIT ?",
                                        arguments: [cursor, limit])
            return (rows.last?["seq"] ?? cursor, rows.map { EndedSession(id: $0["id"], expires: $0["expires"]) })
        }
    }

    package func liveSessions(organization: String, subject: String?, now: Int64, limit: Int) async throws -> [SessionRecord] {
        try await pool.read { db in
            var sql = "SELECT * FROM sessions WHERE organization = ? AND ended IS NULL AND expires > ?"
            var arguments: StatementArguments = [organization, now]
            if let subject { sql += " AND subject = ?"; arguments += [subject] }
            sql += " ORDER BY created DESC LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.session)
        }
    }

    package func purgeSessions(now: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM sessions WHERE expires <= ?", arguments: [now])
            let sessions = db.changesCount
            // AUTOINCREMENT: a deleted seq is never handed out again, so cursors stay valid.
            try db.execute(sql: "DELETE FROM ended_sessions WHERE expires <= ?", arguments: [now])
            return sessions + db.changesCount
        }
    }

    static func session(_ row: Row) -> SessionRecord {
        SessionRecord(id: row["id"], organization: row["organization"], subject: row["subject"], sessionIndex: row["session_index"],
                      created: row["created"], expires: row["expires"])
    }
}
