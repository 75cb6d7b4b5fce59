import Foundation
import Synchronization

/// Where spent IDs are remembered (assertion IDs until their NotOnOrAfter, rule 9; spent
/// AuthnRequest IDs, rule 8). `spend` is atomic: of two racing callers with the same ID,
/// exactly one gets `true`. A shared implementation (PostgreSQL) comes with multi-replica
/// support.
public protocol ReplayCache: Sendable {
    /// Records `id` as used until `expiry`; false when it was already recorded.
    func spend(_ id: String, until expiry: Date, now: Date) -> Bool
}

/// One process's replay cache: bounded, expired entries dropped as it fills.
public final class MemoryReplayCache: ReplayCache {
    private let state = Mutex<[String: Date]>([:])
    public let capacity: Int

    public init(capacity: Int = 100_000) { self.capacity = capacity }

    public func spend(_ id: String, until expiry: Date, now: Date) -> Bool {
        state.withLock { entries in
            if let existing = entries[id], existing > now { return false }
            if entries.count >= capacity {
                entries = entries.filter { $0.value > now }
                if entries.count >= capacity {
                    // Full of live entries: forget the ones that expire first. Each of them
                    // is still protected by its own NotOnOrAfter check.
                    let keep = entries.sorted { $0.value > $1.value }.prefix(capacity / 2)
                    entries = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
                }
            }
            entries[id] = expiry
            return true
        }
    }
}
