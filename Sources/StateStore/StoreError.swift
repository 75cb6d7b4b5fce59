import Foundation
import SAML

/// Why a store could not be opened or did not answer; the message names the store, never
/// its credentials.
package struct StoreError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// Runs `body`, or throws when it takes longer than `limit` (a store that hangs must not
/// hold a login forever).
package func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw StoreError("no answer within \(limit)")
        }
        return value
    }
}

/// The store of a gateway whose configured store could not be opened: every login fails
/// closed (`503 state_store_unavailable`) while sessions keep flowing.
package struct UnavailableStore: ReplayStore {
    package init() {}
    package func spendNow(_ spends: [ReplaySpend], now: Date) -> StoreOutcome? { .unavailable }
    package func spend(_ spends: [ReplaySpend], now: Date) async -> StoreOutcome { .unavailable }
}
