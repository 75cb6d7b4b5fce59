import Foundation
import Synchronization

/// Where spent IDs are remembered (assertion IDs until their NotOnOrAfter, rule 9; spent
/// AuthnRequest IDs, rule 8). `spend` is atomic: of two racing callers with the same ID,
/// exactly one gets `.spent`. A shared implementation (PostgreSQL) comes with multi-replica
/// support.
public enum SpendResult: Sendable, Equatable {
    case spent, alreadySpent
    /// The ID could not be recorded (store full or down): the login must fail closed.
    case unavailable
}

public protocol ReplayCache: Sendable {
    /// Records `id` as used until `expiry`.
    func spend(_ id: String, until expiry: Date, now: Date) -> SpendResult
}

/// One process's replay cache: bounded; expired entries are dropped as it fills. Full of
/// live entries it refuses new ones rather than forget an ID that could still be replayed.
public final class MemoryReplayCache: ReplayCache {
    private let state = Mutex<[String: Date]>([:])
    public let capacity: Int

    public init(capacity: Int = 100_000) { self.capacity = capacity }

    public func spend(_ id: String, until expiry: Date, now: Date) -> SpendResult {
        state.withLock { entries in
            if let existing = entries[id], existing > now { return .alreadySpent }
            if entries.count >= capacity {
                entries = entries.filter { $0.value > now }
                if entries.count >= capacity { return .unavailable }
            }
            entries[id] = expiry
            return .spent
        }
    }
}
