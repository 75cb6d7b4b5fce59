import CryptoCore
import HTTPWire
import Sessions
import Synchronization

/// The live access tokens this gateway knows, by hash (docs/CONTRACT.md "Access tokens for CLIs
/// and git"), kept current from the state store by TokenSync: a request's token is looked
/// up without a store round trip. Every change moves `generation`, which empties the
/// per-loop `TokenCache`s (token text → token, so a known token is not hashed again).
package final class TokenIndex: Sendable {
    private let byHash = Mutex<[String: AccessToken]>([:])
    private let moves = Atomic<UInt64>(0)
    /// When each token was last used here (to the minute), until TokenSync writes it.
    private let usage = Mutex<[String: Int64]>([:])

    package init() {}

    package var generation: UInt64 { moves.load(ordering: .acquiring) }

    package var count: Int { byHash.withLock { $0.count } }

    /// Takes tokens as the store has them now: revoked or expired ones are dropped.
    package func apply(_ tokens: [AccessToken], now: Int64) {
        guard !tokens.isEmpty else { return }
        byHash.withLock { index in
            for token in tokens {
                index[token.hash] = token.revoked || token.expires <= now ? nil : token
            }
        }
        moves.add(1, ordering: .releasing)
    }

    package func purge(now: Int64) {
        let gone = byHash.withLock { index -> Bool in
            let before = index.count
            index = index.filter { $0.value.expires > now }
            return index.count != before
        }
        if gone { moves.add(1, ordering: .releasing) }
    }

    /// `id` was used in `minute` (reported once a minute per event loop).
    package func used(_ id: String, minute: Int64) {
        usage.withLock { used in used[id] = max(used[id] ?? 0, minute) }
    }

    /// The uses reported since the last call.
    package func takeUsage() -> [String: Int64] {
        usage.withLock { used in
            defer { used.removeAll() }
            return used
        }
    }

    /// Puts back uses the store did not take.
    package func restoreUsage(_ used: [String: Int64]) {
        usage.withLock { pending in pending.merge(used) { max($0, $1) } }
    }

    /// The live token whose text this is.
    package func token(text: Substring) -> AccessToken? {
        guard let hash = try? AccessToken.hash(String(text)) else { return nil }
        return byHash.withLock { $0[hash] }
    }
}

/// Tokens one event loop looked up recently, by their text: loop-confined (no lock), emptied
/// when the index's generation moves (a token revoked or changed anywhere). Each entry also
/// keeps the decisions made from it by one flow, per organization and resource group (the
/// identity headers are built once), and the
/// minute its use was last reported. At most `capacity` entries; only tokens the index
/// knows get in.
package final class TokenCache {
    package final class Entry {
        package let token: AccessToken
        /// Which flow made `decisions`: a reload may change the policy they came from.
        var owner: SessionCache.Owner?
        package var decisions: [String: Granted] = [:]
        package var minute: Int64 = 0
        init(token: AccessToken) { self.token = token }
    }

    private var entries: [Substring: Entry] = [:]
    private var generation: UInt64 = 0
    package let capacity: Int

    package init(capacity: Int = 1024) { self.capacity = capacity }

    package func entry(_ text: Substring, index: TokenIndex) -> Entry? {
        let current = index.generation
        if current != generation {
            entries.removeAll(keepingCapacity: true)
            generation = current
        }
        if let known = entries[text] { return known }
        guard let found = index.token(text: text) else { return nil }
        if entries.count >= capacity { entries.remove(at: entries.startIndex) }
        let entry = Entry(token: found)
        entries[Substring(String(text))] = entry
        return entry
    }
}
