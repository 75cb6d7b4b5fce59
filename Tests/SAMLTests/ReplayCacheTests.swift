import Foundation
import Testing
@testable import SAML

@Suite("Replay cache")
struct ReplayCacheTests {
    let t0 = Date(timeIntervalSince1970: 1_000_000)

    @Test func anIDIsSpentOnceUntilItExpires() {
        let cache = MemoryReplayCache()
        #expect(cache.spend("a", until: t0 + 60, now: t0) == .spent)
        #expect(cache.spend("a", until: t0 + 60, now: t0 + 59) == .alreadySpent)
        // Past its expiry the ID may be recorded again: the assertion itself is expired by then.
        #expect(cache.spend("a", until: t0 + 200, now: t0 + 61) == .spent)
    }

    @Test func racingSpendersGetExactlyOneSuccess() async {
        let cache = MemoryReplayCache()
        let t0 = self.t0
        let wins = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 { group.addTask { cache.spend("same", until: t0 + 60, now: t0) == .spent } }
            var count = 0
            for await won in group where won { count += 1 }
            return count
        }
        #expect(wins == 1)
    }

    /// Full of IDs that could still be replayed, the cache refuses new logins rather than
    /// forget any of them: every recorded ID stays refused.
    @Test func aFullCacheFailsClosedAndForgetsNothingLive() {
        let cache = MemoryReplayCache(capacity: 100)
        for i in 0..<100 { #expect(cache.spend("id-\(i)", until: t0 + Double(1000 + i), now: t0) == .spent) }
        #expect(cache.spend("new", until: t0 + 5000, now: t0) == .unavailable)
        for i in 0..<100 { #expect(cache.spend("id-\(i)", until: t0 + 9999, now: t0) == .alreadySpent) }
    }

    @Test func expiredEntriesMakeRoom() {
        let cache = MemoryReplayCache(capacity: 10)
        for i in 0..<10 { #expect(cache.spend("old-\(i)", until: t0 + 1, now: t0) == .spent) }
        #expect(cache.spend("fresh", until: t0 + 100, now: t0 + 2) == .spent)
        #expect(cache.spend("fresh", until: t0 + 100, now: t0 + 3) == .alreadySpent)
    }
}
