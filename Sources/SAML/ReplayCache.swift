import Foundation
import Synchronization

/// Where spent IDs are remembered (assertion IDs until their NotOnOrAfter, rule 9; spent
/// AuthnRequest IDs, rule 8). `spend` is atomic: of two racing callers with the same ID,
/// exactly one gets `.spent`.
public enum SpendResult: Sendable, Equatable {
    case spent, alreadySpent
    /// The ID could not be recorded (store full or down): the login must fail closed.
    case unavailable
}

public protocol ReplayCache: Sendable {
    /// Records `id` as used until `expiry`.
    func spend(_ id: String, until expiry: Date, now: Date) -> SpendResult
}

/// One ID a login spends (rule 8's request, rule 9's assertion), and the refusal when it
/// was spent already.
public struct ReplaySpend: Sendable, Equatable {
    public let id: String
    public let until: Date
    public let refusal: SAMLError
}

public enum StoreOutcome: Sendable, Equatable {
    case spent
    /// The first of the IDs that was still live; nothing was recorded.
    case alreadySpent(ReplaySpend)
    /// Nothing could be recorded (store full, down or unreachable): fail closed.
    case unavailable
}

/// A replay store shared by every replica (PostgreSQL) or one process's (memory). A
/// login's IDs are spent together, all or none, so two replicas racing on the same
/// response accept it exactly once.
public protocol ReplayStore: Sendable {
    /// The outcome at once, when the store answers without I/O (memory); nil otherwise.
    func spendNow(_ spends: [ReplaySpend], now: Date) -> StoreOutcome?
    func spend(_ spends: [ReplaySpend], now: Date) async -> StoreOutcome
}

/// One process's replay cache: bounded; expired entries are dropped as it fills. Full of
/// live entries it refuses new ones rather than forget an ID that could still be replayed.
public final class MemoryReplayCache: ReplayCache, ReplayStore {
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

    public func spendNow(_ spends: [ReplaySpend], now: Date) -> StoreOutcome? {
        state.withLock { entries in
            for spend in spends where (entries[spend.id].map { $0 > now } ?? false) { return .alreadySpent(spend) }
            if entries.count + spends.count > capacity {
                entries = entries.filter { $0.value > now }
                if entries.count + spends.count > capacity { return .unavailable }
            }
            for spend in spends { entries[spend.id] = spend.until }
            return .spent
        }
    }

    public func spend(_ spends: [ReplaySpend], now: Date) async -> StoreOutcome { spendNow(spends, now: now)! }
}
