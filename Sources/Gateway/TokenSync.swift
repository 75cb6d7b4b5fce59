import Access
import Foundation
import Logging
import StateStore
import Synchronization

/// Keeps `GatewayShared.tokens` current from the state store (docs/CONTRACT.md "Access tokens
/// for CLIs and git"): every token created or changed anywhere is read within `pollEvery`,
/// so a revocation on one replica is refused on every other within seconds; once a minute
/// the tokens used here are recorded (last used, to the minute) and expired ones dropped.
enum TokenSync {
    static let pollEvery: Duration = .seconds(1)
    static let flushEvery: Duration = .seconds(60)

    static func run(_ shared: GatewayShared) async {
        var version: Int64 = -1
        var nextFlush = ContinuousClock.now + flushEvery
        while !Task.isCancelled {
            version = await poll(shared, after: version)
            if ContinuousClock.now >= nextFlush {
                nextFlush = ContinuousClock.now + flushEvery
                await flush(shared)
            }
            try? await Task.sleep(for: pollEvery)
        }
    }

    /// Reads the changes after `version` (everything at -1); the version now.
    @discardableResult
    static func poll(_ shared: GatewayShared, after version: Int64) async -> Int64 {
        do {
            let changed = try await shared.store.tokens(changedAfter: max(version, 0))
            shared.tokens.apply(changed.tokens, now: Int64(shared.clock().timeIntervalSince1970))
            return changed.version
        } catch {
            shared.logger.debug("access tokens not read", metadata: ["error": "\(error)"])
            return version
        }
    }

    /// Records last-used times, drops expired tokens.
    static func flush(_ shared: GatewayShared) async {
        let now = Int64(shared.clock().timeIntervalSince1970)
        shared.tokens.purge(now: now)
        let used = shared.tokens.takeUsage()
        if !used.isEmpty {
            do {
                try await shared.store.touchTokens(used)
            } catch {
                // Only a convenience for the token list: put back, tried again next minute.
                shared.tokens.restoreUsage(used)
            }
        }
        _ = try? await shared.store.purgeTokens(now: now)
    }
}
