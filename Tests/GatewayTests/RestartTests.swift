import Foundation
import TestSupport
import Testing

/// What a restart forgets (docs/CONTRACT.md "State store"): with the SQLite store, the default,
/// an assertion spent before a restart stays spent after it; with `store: memory` it
/// could be replayed until it expires, which is why memory is for the demo and tests.
@Suite("Restarts and the state store", .serialized)
struct RestartTests {
    /// Logs in on one gateway, stops it, starts another on the same store, and posts the
    /// same response again with the same login cookie; returns that second answer.
    static func replayAfterRestart(store: String) async throws -> (status: Int, body: String) {
        // The requests run off the cooperative pool: the SQLite store answers the gateway
        // through a task, which must not wait behind this test's blocking reads.
        let first = try await SSOFlowTests.start(extra: "store: \"\(store)\"")
        nonisolated(unsafe) let firstGateway = first
        let (response, cookies, accepted) = try await offThePool { () throws -> (String, [String], RawHTTPClient.Response) in
            let start = try firstGateway.harness.request("GET /organizations/acme/sso?return_to=/acme/x HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
            let login = try #require(SSOFlowTests.cookie(start, "ssogate_session_login"))
            let response = try SSOFlowTests.samlResponse(inResponseTo: SSOFlowTests.requestID(in: try #require(start.header("location"))),
                                                         assertionID: "restart-\(UUID().uuidString)")
            let cookies = ["ssogate_session_login=" + SSOFlowTests.value(login)]
            return (response, cookies, try SSOFlowTests.post(firstGateway, form: ["SAMLResponse": response], cookies: cookies))
        }
        #expect(accepted.status == 303 && accepted.header("location") == "/acme/x")
        await SSOFlowTests().stop(first)

        let second = try await SSOFlowTests.start(extra: "store: \"\(store)\"")
        nonisolated(unsafe) let secondGateway = second
        let replay = try await offThePool {
            try SSOFlowTests.post(secondGateway, form: ["SAMLResponse": response], cookies: cookies, accept: "application/json")
        }
        await SSOFlowTests().stop(second)
        return (replay.status, replay.text)
    }

    @Test func withTheSQLiteStoreASpentAssertionStaysSpentAcrossARestart() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let replay = try await Self.replayAfterRestart(store: "sqlite:\(folder.path)/state.db")
        #expect(replay.status == 403)
        #expect(replay.body.contains("in_response_to_unknown") || replay.body.contains("assertion_replayed"), "\(replay.body)")
    }

    @Test func anSQLiteFileThatCannotBeOpenedFailsLoginsClosedAndSessionsKeepWorking() async throws {
        let memory = try await SSOFlowTests.start()
        let (_, session) = try SSOFlowTests.logIn(memory)
        await SSOFlowTests().stop(memory)
        let g = try await SSOFlowTests.start(extra: "store: \"sqlite:/nonexistent-ssogate-folder/state.db\"")
        #expect(g.harness.logs.contains("state store cannot be opened"))
        nonisolated(unsafe) let gateway = g
        let refused = try await offThePool { () throws -> RawHTTPClient.Response in
            let start = try gateway.harness.request("GET /organizations/acme/sso HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
            let login = try #require(SSOFlowTests.cookie(start, "ssogate_session_login"))
            let response = try SSOFlowTests.samlResponse(inResponseTo: SSOFlowTests.requestID(in: try #require(start.header("location"))))
            return try SSOFlowTests.post(gateway, form: ["SAMLResponse": response], cookies: ["ssogate_session_login=" + SSOFlowTests.value(login)],
                                         accept: "application/json")
        }
        #expect(refused.status == 503 && refused.text.contains("\"error\":\"state_store_unavailable\""))
        let page = try await offThePool {
            try gateway.harness.request("GET /acme/echo HTTP/1.1\r\nHost: h\r\nCookie: \(session)\r\n\r\n")
        }
        #expect(page.status == 200, "a session sealed before needs no store")
        await SSOFlowTests().stop(g)
    }

    @Test func withTheMemoryStoreARestartForgetsWhatWasSpent() async throws {
        // The behaviour the SQLite default removes: the same response logs in again.
        let replay = try await Self.replayAfterRestart(store: "memory")
        #expect(replay.status == 303, "\(replay.body)")
    }
}
