import Foundation
import Testing
@testable import Sessions

@Suite("Sealed session cookies")
struct SessionCookieTests {
    static let old = Array("old-secret-0123456789abcdef0123456789".utf8)
    static let new = Array("new-secret-0123456789abcdef0123456789".utf8)
    static let now = Date(timeIntervalSince1970: 1_767_261_660)
    static let later = Int64(1_767_261_660 + 3600)

    static let session = Session(grants: [
        "acme": SessionGrant(id: "0123456789abcdef0123456789abcdef", subject: "alice@example.test", email: "alice@example.test", groups: ["engineering", "hf-admins"], role: "admin", expires: later, seen: 0),
        "globex": SessionGrant(id: "0123456789abcdef0123456789abcdef", subject: "alice@globex.test", email: nil, groups: [], role: nil, expires: later, seen: 0),
    ])

    @Test func aSealedSessionOpensAsItWas() throws {
        let cookies = SessionCookies(secrets: [Self.new])
        let value = try #require(try cookies.seal(Self.session, now: Self.now))
        #expect(value.hasPrefix("v1."))
        #expect(cookies.open(Substring(value), now: Self.now) == Self.session)
        #expect(!value.contains("alice"))  // sealed, not just signed
    }

    @Test func sealingTwiceGivesDifferentValues() throws {
        let cookies = SessionCookies(secrets: [Self.new])
        #expect(try cookies.seal(Self.session, now: Self.now) != cookies.seal(Self.session, now: Self.now))
    }

    @Test func rotationOpensOldCookiesAndSealsWithTheFirstSecret() throws {
        let before = try #require(try SessionCookies(secrets: [Self.old]).seal(Self.session, now: Self.now))
        let rotated = SessionCookies(secrets: [Self.new, Self.old])
        #expect(rotated.open(Substring(before), now: Self.now) == Self.session)
        let after = try #require(try rotated.seal(Self.session, now: Self.now))
        #expect(SessionCookies(secrets: [Self.new]).open(Substring(after), now: Self.now) == Self.session)
        #expect(SessionCookies(secrets: [Self.old]).open(Substring(after), now: Self.now) == nil)
    }

    @Test func expiredGrantsAreDroppedOnOpen() throws {
        var session = Self.session
        session.grants["globex"]?.expires = Int64(Self.now.timeIntervalSince1970) - 1
        let cookies = SessionCookies(secrets: [Self.new])
        let value = try #require(try cookies.seal(session, now: Self.now.addingTimeInterval(-10)))
        let opened = try #require(cookies.open(Substring(value), now: Self.now))
        #expect(Array(opened.grants.keys) == ["acme"])
        #expect(opened.grant(for: "acme", now: Self.now) != nil)
        #expect(opened.grant(for: "acme", now: Date(timeIntervalSince1970: TimeInterval(Self.later))) == nil)
    }

    /// Every byte value at positions across the cookie: nothing but the original opens,
    /// and never as a different session. (Base64's unused low bits of the last character
    /// can change without changing the decoded bytes; that still yields the original.)
    @Test func noSingleByteChangeOpensAsAnythingElse() throws {
        let cookies = SessionCookies(secrets: [Self.new])
        let value = Array(try #require(try cookies.seal(Self.session, now: Self.now)).utf8)
        let positions = Array(Set([0, 1, 2, 3, 4, 10, 20, value.count / 2, value.count - 2, value.count - 1]))
        for position in positions {
            for byte in UInt8(0)...UInt8(255) where byte != value[position] {
                var changed = value
                changed[position] = byte
                let opened = cookies.open(Substring(String(decoding: changed, as: UTF8.self)), now: Self.now)
                #expect(opened == nil || opened == Self.session, "position \(position) byte \(byte)")
            }
        }
    }

    @Test func truncatedOrForeignValuesAreNoSession() throws {
        let cookies = SessionCookies(secrets: [Self.new])
        let value = try #require(try cookies.seal(Self.session, now: Self.now))
        for bad in ["", "v1.", "v2." + value.dropFirst(3), String(value.dropLast(5)), "garbage", value + "=="] {
            #expect(cookies.open(Substring(bad), now: Self.now) == nil, "\(bad.prefix(20))")
        }
    }

    @Test func aLoginStateCookieNeverOpensAsASessionNorTheReverse() throws {
        let state = SealedCodec<LoginState>(secrets: [Self.new], purpose: "login-state")
        let stateValue = try state.seal(LoginState(organization: "acme", requestID: "id-1", returnTo: "/acme", test: false, expires: Self.later))
        #expect(SessionCookies(secrets: [Self.new]).open(Substring(stateValue), now: Self.now) == nil)
        let sessionValue = try #require(try SessionCookies(secrets: [Self.new]).seal(Self.session, now: Self.now))
        #expect(state.open(sessionValue) == nil)
        #expect(state.open(stateValue)?.requestID == "id-1")
    }

    @Test func manyGroupsStayUnderTheCookieLimit() throws {
        let groups = (0..<500).map { "group-with-a-fairly-long-name-\($0)" } + [String(repeating: "x", count: 300)]
        var session = Session()
        for org in ["acme", "globex", "initech"] {
            session.grants[org] = SessionGrant(id: "0123456789abcdef0123456789abcdef", subject: "alice@\(org).test", email: "alice@\(org).test", groups: groups, role: "write", expires: Self.later, seen: 0)
        }
        let cookies = SessionCookies(secrets: [Self.new])
        let value = try #require(try cookies.seal(session, now: Self.now))
        #expect(value.utf8.count <= SessionCookies.maxValueBytes)
        let opened = try #require(cookies.open(Substring(value), now: Self.now))
        #expect(opened.grants.count == 3)
        for grant in opened.grants.values {
            #expect(grant.groups.count <= SessionCookies.maxGroups)
            #expect(grant.groups.allSatisfy { $0.utf8.count <= SessionCookies.maxGroupBytes })
            #expect(grant.role == "write" && grant.subject.hasPrefix("alice@"))
        }
    }

    @Test func theNewestLoginIsNeverTheGrantEvicted() throws {
        // Four organizations whose subjects fill the budget: the login being completed (with
        // the earliest expiry, as a short session_ttl gives) must survive; older grants go.
        var session = Session()
        let long = String(repeating: "s", count: 900)
        for (index, org) in ["a", "b", "c", "d"].enumerated() {
            session.grants[org] = SessionGrant(id: "0123456789abcdef0123456789abcdef", subject: long + org, email: nil, groups: ["g"], role: nil, expires: Self.later + Int64(index), seen: 0)
        }
        session.grants["a"]?.expires = Self.later - 1800
        let cookies = SessionCookies(secrets: [Self.new])
        let value = try #require(try cookies.seal(session, now: Self.now, newest: "a"))
        let opened = try #require(cookies.open(Substring(value), now: Self.now))
        #expect(opened.grants["a"]?.subject == long + "a")
        #expect(opened.grants.count < 4)
    }

    @Test func aLoginThatCannotFitAloneIsAnError() throws {
        var session = Self.session
        session.grants["huge"] = SessionGrant(id: "0123456789abcdef0123456789abcdef", subject: String(repeating: "x", count: 5000), email: nil, groups: [], role: nil, expires: Self.later, seen: 0)
        let cookies = SessionCookies(secrets: [Self.new])
        #expect(throws: SessionTooLarge.self) { try cookies.seal(session, now: Self.now, newest: "huge") }
    }

    @Test func nothingLeftMeansNoCookie() throws {
        var session = Self.session
        for key in session.grants.keys { session.grants[key]?.expires = 1 }
        #expect(try SessionCookies(secrets: [Self.new]).seal(session, now: Self.now) == nil)
    }
}
