import Sessions
import Synchronization

struct MemorySessions {
    var records: [String: SessionRecord] = [:]
    var ended: Set<String> = []
    /// Endings in order; `seq` is the position plus `dropped`.
    var log: [EndedSession] = []
    var dropped: Int64 = 0
}

extension MemoryStore {
    static let sessionCapacity = 200_000

    package func recordSession(_ record: SessionRecord) async throws {
        _ = recordSessionNow(record)
    }

    package func recordSessionNow(_ record: SessionRecord) -> Bool? {
        sessionState.withLock { s in
            // Bounded like the replay cache: expired records go first, then the oldest (a
            // memory store serves one gateway: a logout still ends that session here, by the
            // IDs its cookie carries; a revoke by member no longer finds it).
            if s.records.count >= Self.sessionCapacity {
                s.records = s.records.filter { $0.value.expires > record.created }
                if s.records.count >= Self.sessionCapacity, let oldest = s.records.values.min(by: { $0.created < $1.created }) {
                    s.records[oldest.id] = nil
                }
            }
            s.records[record.id] = record
            return true
        }
    }

    package func endSessions(_ which: SessionSelector, now: Int64) async throws -> [SessionRecord] {
        sessionState.withLock { s in
            let ending = s.records.values.filter { $0.expires > now && !s.ended.contains($0.id) && $0.selected(by: which) }
                .sorted { $0.created < $1.created }
            for record in ending {
                s.ended.insert(record.id)
                s.log.append(EndedSession(id: record.id, expires: record.expires))
            }
            return ending
        }
    }

    package func endedSessions(after cursor: Int64, limit: Int) async throws -> (cursor: Int64, ended: [EndedSession]) {
        sessionState.withLock { s in
            let start = Int(max(cursor - s.dropped, 0))
            let slice = s.log.dropFirst(start).prefix(limit)
            return (s.dropped + Int64(start + slice.count), Array(slice))
        }
    }

    package func liveSessions(organization: String, subject: String?, now: Int64, limit: Int) async throws -> [SessionRecord] {
        sessionState.withLock { s in
            Array(s.records.values.filter {
                $0.organization == organization && (subject == nil || $0.subject == subject) && $0.expires > now && !s.ended.contains($0.id)
            }.sorted { $0.created > $1.created }.prefix(limit))
        }
    }

    package func purgeSessions(now: Int64) async throws -> Int {
        sessionState.withLock { s in
            let before = s.records.count
            s.records = s.records.filter { $0.value.expires > now }
            s.ended = s.ended.filter { s.records[$0] != nil }
            // Only a leading run of the log goes, so that cursors stay positions.
            let gone = s.log.prefix { $0.expires <= now }.count
            s.log.removeFirst(gone)
            s.dropped += Int64(gone)
            return before - s.records.count + gone
        }
    }
}
