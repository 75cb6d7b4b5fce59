import Config
import Foundation
@testable import Access
@testable import Gateway
@testable import HTTPWire
import SAML
import Sessions
import Testing
import XMLCore

/// The per-loop session cache: a cookie opened once serves the next requests without
/// being opened again, but never past its grants' expiry, never for a flow that did not
/// open it (a reload: new secrets, an organization disabled), and never for a cookie that
/// did not open.
@Suite("Session cache")
struct SessionCacheTests {
    static let now = SSOFlowTests.now

    static func flow(secret: String = "0123456789abcdef0123456789abcdef-test", acme: Bool = true) throws -> SSOFlow {
        XMLLibrary.initialize()
        let yaml = SSOFlowTests.yaml(upstreamPort: 9, acme: acme)
            .replacingOccurrences(of: "0123456789abcdef0123456789abcdef-test", with: secret)
        let configuration = try ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: ".")
        return SSOFlow(configuration: configuration, replayCache: MemoryReplayCache(), clock: { now })
    }

    static func cookie(_ flow: SSOFlow, expires: Int64 = Int64(now.timeIntervalSince1970) + 3600) throws -> Substring {
        let grant = SessionGrant(id: "0123456789abcdef0123456789abcdef", subject: "alice@acme.test", email: nil, groups: [], role: nil, expires: expires, seen: 0)
        return Substring(try #require(try flow.sessions.seal(Session(grants: ["acme": grant]), now: now)))
    }

    static func forwarded(_ decision: AccessDecision) -> Bool {
        if case .forward(let identity, _, _, _, _) = decision { return identity.contains { $0 == ("X-Forwarded-User", "alice@acme.test") } }
        return false
    }

    func decide(_ flow: SSOFlow, _ cookie: Substring, _ cache: SessionCache) -> (AccessDecision, setCookie: String?) {
        flow.decide(path: "/acme/x", uri: "/acme/x", method: "GET", accept: "application/json", sessionCookie: cookie, cache: cache)
    }

    @Test func aCookieOpenedOnceIsRememberedAndServesAgain() throws {
        let flow = try Self.flow()
        let cache = SessionCache()
        let value = try Self.cookie(flow)
        #expect(Self.forwarded(decide(flow, value, cache).0))
        #expect(cache.count == 1)
        #expect(cache.remembered(for: value, owner: flow.cacheOwner, now: Int64(Self.now.timeIntervalSince1970)) != nil)
        #expect(Self.forwarded(decide(flow, value, cache).0))
        #expect(cache.count == 1)
    }

    @Test func aCookieThatDiffersOnlyBeforeItsLastBytesIsNotTheRememberedOne() throws {
        // Entries are found by a hash of the value's last bytes; equality must still compare
        // all of them.
        let flow = try Self.flow()
        let cache = SessionCache()
        let value = try Self.cookie(flow)
        #expect(Self.forwarded(decide(flow, value, cache).0))
        var changed = Array(value.utf8)
        changed[5] = changed[5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let other = Substring(String(decoding: changed, as: UTF8.self))
        let now = Int64(Self.now.timeIntervalSince1970)
        #expect(cache.remembered(for: other, owner: flow.cacheOwner, now: now) == nil)
        #expect(!Self.forwarded(decide(flow, other, cache).0))
        #expect(cache.remembered(for: value, owner: flow.cacheOwner, now: now) != nil)
    }

    @Test func aCookieThatDoesNotOpenIsNeverRemembered() throws {
        let flow = try Self.flow()
        let cache = SessionCache()
        var tampered = Array(try Self.cookie(flow).utf8)
        tampered[tampered.count - 3] = tampered[tampered.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        for value in [Substring(String(decoding: tampered, as: UTF8.self)), "v1.", "garbage", "v1.AAAA="] {
            let (decision, setCookie) = decide(flow, value, cache)
            #expect(!Self.forwarded(decision))
            #expect(setCookie?.contains("Max-Age=0") == true, "an unopenable cookie is cleared")
        }
        #expect(cache.count == 0)
    }

    @Test func aRememberedSessionEndsWithItsEarliestGrant() throws {
        let flow = try Self.flow()
        let cache = SessionCache()
        let now = Int64(Self.now.timeIntervalSince1970)
        let value = try Self.cookie(flow, expires: now + 60)
        #expect(Self.forwarded(decide(flow, value, cache).0))
        #expect(cache.remembered(for: value, owner: flow.cacheOwner, now: now + 59) != nil)
        #expect(cache.remembered(for: value, owner: flow.cacheOwner, now: now + 60) == nil)
        #expect(cache.count == 0, "the expired entry is dropped")
    }

    @Test func aReloadWithNewSecretsDoesNotServeSessionsOfTheOldOnes() throws {
        let before = try Self.flow()
        let after = try Self.flow(secret: "fedcba9876543210fedcba9876543210-rotated")
        let cache = SessionCache()
        let value = try Self.cookie(before)
        #expect(Self.forwarded(decide(before, value, cache).0))
        let (decision, setCookie) = decide(after, value, cache)
        #expect(!Self.forwarded(decision), "the cached session of the old secret is not taken")
        #expect(setCookie?.contains("Max-Age=0") == true)
        #expect(cache.count == 0)
    }

    @Test func aReloadThatDisablesTheOrganizationEndsItsCachedGrants() throws {
        let before = try Self.flow()
        let after = try Self.flow(acme: false)
        let cache = SessionCache()
        let value = try Self.cookie(before)
        #expect(Self.forwarded(decide(before, value, cache).0))
        #expect(!Self.forwarded(decide(after, value, cache).0))
    }

    @Test func decisionsRememberedForOneOrganizationAreNeverAnothers() throws {
        let flow = try Self.flow()
        let cache = SessionCache()
        let value = try Self.cookie(flow)       // a grant for acme only
        for _ in 0..<2 {                        // the second round is served from the memo
            #expect(Self.forwarded(decide(flow, value, cache).0))
            let (other, _) = flow.decide(path: "/globex/x", uri: "/globex/x", method: "GET", accept: "application/json",
                                         sessionCookie: value, cache: cache)
            guard case .unauthorized = other else { Issue.record("acme's grant served for globex: \(other)"); return }
            let (open, _) = flow.decide(path: "/public/x", uri: "/public/x", method: "GET", accept: "application/json",
                                        sessionCookie: value, cache: cache)
            guard case .forward(let identity, _, _, _, _) = open else { Issue.record("public path: \(open)"); return }
            #expect(identity.map(\.0) == ["X-SSO-Organizations"], "no identity on an unprotected path")
        }
    }

    @Test func theCacheHoldsAtMostItsCapacity() throws {
        let flow = try Self.flow()
        let cache = SessionCache(capacity: 4)
        var values: [Substring] = []
        for _ in 0..<10 {
            let value = try Self.cookie(flow)       // a fresh nonce: another value each time
            values.append(value)
            #expect(Self.forwarded(decide(flow, value, cache).0))
            #expect(cache.count <= 4)
        }
        #expect(cache.count == 4)
        // An evicted cookie still opens (and comes back in).
        #expect(Self.forwarded(decide(flow, values[0], cache).0))
    }
}
