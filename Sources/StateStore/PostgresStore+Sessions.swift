import PostgresNIO
import Sessions

extension PostgresStore {
    package func recordSession(_ record: SessionRecord) async throws {
        try await withTimeout(self.timeout) { () async throws -> Void in
            try await self.client.query("""
                INSERT INTO ssogate_sessions (id, organization, subject, session_index, created, expires)
                VALUES (\(record.id), \(record.organization), \(record.subject), \(record.sessionIndex), \(record.created), \(record.expires))
                """, logger: self.logger)
        }
    }

    package func endSessions(_ which: SessionSelector, now: Int64) async throws -> [SessionRecord] {
        let returning = "RETURNING id, organization, subject, session_index, created, expires"
        var query: PostgresQuery
        switch which {
        case .ids(let ids):
            guard !ids.isEmpty else { return [] }
            query = "UPDATE ssogate_sessions SET ended = \(now) WHERE ended IS NULL AND expires > \(now) AND id = ANY(\(ids)::text[]) "
        case .subject(let organization, let subject), .sessionIndexes(let organization, let subject, []):
            query = """
                UPDATE ssogate_sessions SET ended = \(now) WHERE ended IS NULL AND expires > \(now)
                AND organization = \(organization) AND subject = \(subject)
                """
        case .sessionIndexes(let organization, let subject, let indexes):
            query = """
                UPDATE ssogate_sessions SET ended = \(now) WHERE ended IS NULL AND expires > \(now)
                AND organization = \(organization) AND subject = \(subject) AND session_index = ANY(\(indexes)::text[])
                """
        case .organization(let organization):
            query = "UPDATE ssogate_sessions SET ended = \(now) WHERE ended IS NULL AND expires > \(now) AND organization = \(organization)"
        }
        query.sql += " " + returning
        let statement = query
        return try await withTimeout(self.timeout) {
            try await self.transaction { connection in
                // One ending at a time: their sequence numbers then commit in order, so a
                // replica that read up to one has not missed a lower one still uncommitted.
                try await connection.query("SELECT pg_advisory_xact_lock(7270718)", logger: self.logger)
                let ended = try await Self.records(try await connection.query(statement, logger: self.logger)).sorted { $0.created < $1.created }
                if !ended.isEmpty {
                    try await connection.query("""
                        INSERT INTO ssogate_ended_sessions (id, expires)
                        SELECT * FROM unnest(\(ended.map(\.id))::text[], \(ended.map(\.expires))::bigint[]) ON CONFLICT (id) DO NOTHING
                        """, logger: self.logger)
                }
                return ended
            }
        }
    }

    package func endedSessions(after cursor: Int64, limit: Int) async throws -> (cursor: Int64, ended: [EndedSession]) {
        try await withTimeout(self.timeout) {
            var last = cursor
            var ended: [EndedSession] = []
            let rows = try await self.client.query("SELECT seq, id, expires FROM ssogate_ended_sessions WHERE seq > \(cursor) ORDER BY seq LIMIT \(limit)",
                                                   logger: self.logger)
            for try await (seq, id, expires) in rows.decode((Int64, String, Int64).self) {
                last = seq
                ended.append(EndedSession(id: id, expires: expires))
            }
            return (last, ended)
        }
    }

    package func liveSessions(organization: String, subject: String?, now: Int64, limit: Int) async throws -> [SessionRecord] {
        try await withTimeout(self.timeout) {
            try await Self.records(try await self.client.query("""
                SELECT id, organization, subject, session_index, created, expires FROM ssogate_sessions
                WHERE organization = \(organization) AND (\(subject)::text IS NULL OR subject = \(subject)) AND ended IS NULL AND expires > \(now)
                ORDER BY created DESC LIMIT \(limit)
                """, logger: self.logger))
        }
    }

    /// Rows of `id, organization, subject, session_index, created, expires`.
    static func records(_ rows: PostgresRowSequence) async throws -> [SessionRecord] {
        var out: [SessionRecord] = []
        for try await (id, organization, subject, index, created, expires) in rows.decode((String, String, String, String?, Int64, Int64).self) {
            out.append(SessionRecord(id: id, organization: organization, subject: subject, sessionIndex: index, created: created, expires: expires))
        }
        return out
    }

    package func purgeSessions(now: Int64) async throws -> Int {
        try await withTimeout(self.timeout) {
            try await self.transaction { connection in
                var count = 0
                for try await _ in try await connection.query("DELETE FROM ssogate_sessions WHERE expires <= \(now) RETURNING id", logger: self.logger)
                    .decode(String.self) { count += 1 }
                for try await _ in try await connection.query("DELETE FROM ssogate_ended_sessions WHERE expires <= \(now) RETURNING id", logger: self.logger)
                    .decode(String.self) { count += 1 }
                return count
            }
        }
    }
}
