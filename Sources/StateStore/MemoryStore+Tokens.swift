import Sessions
import Synchronization

struct MemoryTokens {
    var tokens: [String: (token: AccessToken, changed: Int64)] = [:]
    var version: Int64 = 0

    mutating func change(_ token: AccessToken) {
        version += 1
        tokens[token.id] = (token, version)
    }
}

extension MemoryStore {
    package func createToken(_ token: AccessToken) async throws {
        tokenState.withLock { $0.change(token) }
    }

    package func tokens(changedAfter version: Int64) async throws -> (version: Int64, tokens: [AccessToken]) {
        tokenState.withLock { s in (s.version, s.tokens.values.filter { $0.changed > version }.sorted { $0.changed < $1.changed }.map(\.token)) }
    }

    package func revokeToken(id: String, organization: String) async throws -> AccessToken? {
        tokenState.withLock { s in
            guard var token = s.tokens[id]?.token, token.organization == organization else { return nil }
            token.revoked = true
            s.change(token)
            return token
        }
    }

    package func revokeTokens(organization: String, subject: String) async throws -> Int {
        tokenState.withLock { s in
            let live = s.tokens.values.map(\.token).filter { $0.organization == organization && $0.subject == subject && !$0.revoked }
            for var token in live {
                token.revoked = true
                s.change(token)
            }
            return live.count
        }
    }

    package func listTokens(organization: String, subject: String?) async throws -> [AccessToken] {
        tokenState.withLock { s in
            s.tokens.values.map(\.token).filter { $0.organization == organization && (subject == nil || $0.subject == subject) }
                .sorted { $0.created > $1.created }
        }
    }

    package func touchTokens(_ lastUsed: [String: Int64]) async throws {
        tokenState.withLock { s in
            for (id, time) in lastUsed {
                guard var token = s.tokens[id]?.token else { continue }
                token.lastUsed = max(token.lastUsed ?? 0, time)
                s.change(token)
            }
        }
    }

    package func purgeTokens(now: Int64) async throws -> Int {
        tokenState.withLock { s in
            let before = s.tokens.count
            s.tokens = s.tokens.filter { $0.value.token.expires > now }
            return before - s.tokens.count
        }
    }
}
