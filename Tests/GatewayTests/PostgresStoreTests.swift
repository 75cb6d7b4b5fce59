import Config
import Foundation
@testable import Gateway
import SAML
import StateStore
import TestSupport
import Testing

/// The replay store shared by replicas, against a real PostgreSQL server. `make test`
/// starts one on loopback (Tests/Replicas/postgres.sh) and sets SSOGATE_TEST_POSTGRES to
/// its URL; without it these tests do not run.
@Suite("Replicas sharing a PostgreSQL replay store", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["SSOGATE_TEST_POSTGRES"] != nil))
struct PostgresStoreTests {
    static var url: String { ProcessInfo.processInfo.environment["SSOGATE_TEST_POSTGRES"] ?? "" }
    static var enabled: Bool { ProcessInfo.processInfo.environment["SSOGATE_TEST_POSTGRES"] != nil }

    /// The test server's settings, read from its URL as the configuration reads them.
    static var settings: GatewayConfiguration.Postgres? {
        let yaml = Harness.yaml(upstreamPort: 9, extra: "store: \"\(url)\"")
        guard case .postgres(let settings)? = try? ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: ".").store else { return nil }
        return settings
    }

    /// Two replicas: each its own gateway and upstream, one database, one session secret.
    static func replicas(store: String = url) async throws -> (SSOFlowTests.Gateway, SSOFlowTests.Gateway) {
        (try await SSOFlowTests.start(extra: "store: \"\(store)\""), try await SSOFlowTests.start(extra: "store: \"\(store)\""))
    }

    /// Waits until the store's table exists (the migration runs in the background).
    static func ready(_ g: SSOFlowTests.Gateway) async throws {
        for _ in 0..<50 {
            if let store = g.harness.server.storeForTests as? PostgresStore, (try? await store.migrate()) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    static func post(_ g: SSOFlowTests.Gateway, _ raw: String) throws -> RawHTTPClient {
        let c = try g.harness.client(timeout: 15)
        try c.send(raw)
        return c
    }

    @Test func theSameResponsePostedToBothReplicasAtOnceIsAcceptedExactlyOnce() async throws {
        let (a, b) = try await Self.replicas()
        // Both pools hold a connection before the race starts (a first connect under a
        // loaded CI machine can take most of the store's 3 s).
        try await Self.ready(a)
        try await Self.ready(b)
        for round in 0..<50 {
            // SP-initiated on A; the login-state cookie opens on B too (same secrets).
            let start = try a.harness.request("GET /organizations/acme/sso HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
            let login = try #require(SSOFlowTests.cookie(start, "ssogate_session_login"))
            let response = try SSOFlowTests.samlResponse(inResponseTo: SSOFlowTests.requestID(in: try #require(start.header("location"))),
                                                         assertionID: "pg-\(UUID().uuidString)-\(round)")
            let body = SSOFlowTests.formBody(["SAMLResponse": response])
            let raw = "POST /organizations/acme/saml/consume HTTP/1.1\r\nHost: hub.example.test\r\nAccept: application/json\r\n"
                + "Cookie: ssogate_session_login=\(SSOFlowTests.value(login))\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            nonisolated(unsafe) let toA = try Self.post(a, raw), toB = try Self.post(b, raw)
            // Read from a thread of its own: the gateways spend through tasks, which must
            // not wait behind this test blocked on a cooperative thread (two here).
            let statuses = try await offThePool { [try toA.readResponse().status, try toB.readResponse().status].sorted() }
            #expect(statuses == [303, 403], "round \(round): \(statuses)")
        }
        await SSOFlowTests().stop(a)
        await SSOFlowTests().stop(b)
    }

    @Test func aSettingsChangeOnOneReplicaIsInForceOnTheOtherWithinFiveSeconds() async throws {
        try await SettingsAPITests.changeReachesTheOtherGateway(store: Self.url, ready: Self.ready)
    }

    @Test func aLogoutOnOneReplicaIsRefusedOnTheOtherWithinFiveSeconds() async throws {
        try await SessionEndTests.logoutReachesTheOtherGateway(store: Self.url, ready: Self.ready)
    }

    @Test func aLoginStartedOnOneReplicaCompletesOnTheOther() async throws {
        let (a, b) = try await Self.replicas()
        try await Self.ready(a)
        try await Self.ready(b)
        let start = try a.harness.request("GET /organizations/acme/sso?return_to=/acme/x HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
        let login = try #require(SSOFlowTests.cookie(start, "ssogate_session_login"))
        let response = try SSOFlowTests.samlResponse(inResponseTo: SSOFlowTests.requestID(in: try #require(start.header("location"))),
                                                     assertionID: "pg-\(UUID().uuidString)")
        nonisolated(unsafe) let (onA, onB) = (a, b)
        let cookies = ["ssogate_session_login=" + SSOFlowTests.value(login)]
        let done = try await offThePool { try SSOFlowTests.post(onB, form: ["SAMLResponse": response], cookies: cookies) }
        #expect(done.status == 303 && done.header("location") == "/acme/x")
        // And a replay of it on A is refused: the spend was shared.
        let replay = try await offThePool {
            try SSOFlowTests.post(onA, form: ["SAMLResponse": response], cookies: cookies, accept: "application/json")
        }
        #expect(replay.status == 403)
        await SSOFlowTests().stop(a)
        await SSOFlowTests().stop(b)
    }

    @Test func anUnreachableStoreFailsLoginsClosedWith503AndSessionsKeepWorking() async throws {
        // Nothing listens on port 9 of loopback: the store is down from the start.
        let memory = try await SSOFlowTests.start()
        let (_, session) = try SSOFlowTests.logIn(memory)
        await SSOFlowTests().stop(memory)
        let g = try await SSOFlowTests.start(extra: "store: \"postgres://ssogate@127.0.0.1:9/ssogate\"")
        let start = try g.harness.request("GET /organizations/acme/sso HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
        let login = try #require(SSOFlowTests.cookie(start, "ssogate_session_login"))
        let response = try SSOFlowTests.samlResponse(inResponseTo: SSOFlowTests.requestID(in: try #require(start.header("location"))))
        nonisolated(unsafe) let gateway = g
        let cookies = ["ssogate_session_login=" + SSOFlowTests.value(login)]
        let refused = try await offThePool {
            try SSOFlowTests.post(gateway, form: ["SAMLResponse": response], cookies: cookies, accept: "application/json")
        }
        #expect(refused.status == 503)
        #expect(refused.text.contains("\"error\":\"state_store_unavailable\""))
        // A session sealed before (same secrets) needs no store.
        let page = try g.harness.request("GET /acme/echo HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nCookie: \(session)\r\n\r\n")
        #expect(page.status == 200)
        #expect(g.upstream.requests.last?.values("x-forwarded-user") == ["alice@example.test"])
        await SSOFlowTests().stop(g)
    }
}
