import Foundation
import NIOCore
@testable import Gateway
import TestSupport
import Testing

/// Health, readiness and metrics (`admin_listen`) over real sockets: off the public port when
/// an admin listener is configured; readiness says why it fails (a store that does not
/// answer, IdP metadata never loaded).
@Suite("Admin listener and readiness", .serialized)
struct AdminListenerTests {
    typealias API = SettingsAPITests

    static func get(_ port: Int, _ path: String) async throws -> RawHTTPClient.Response {
        try await offThePool {
            let client = try RawHTTPClient(port: port)
            try client.send("GET \(path) HTTP/1.1\r\nHost: admin\r\n\r\n")
            return try client.readResponse()
        }
    }

    @Test func withoutAnAdminListenerThePublicPortAnswersAllThree() async throws {
        let g = try await API.start()
        #expect(try await Self.get(g.harness.port, "/_ssogate/healthz").status == 200)
        let ready = try await Self.get(g.harness.port, "/_ssogate/ready")
        #expect(ready.status == 200 && ready.text == "ready\n", "\(ready)")
        #expect(try await Self.get(g.harness.port, "/_ssogate/metrics").text.contains("ssogate_"))
        await SSOFlowTests().stop(g)
    }

    @Test func withOneMetricsAndReadinessLeaveThePublicPort() async throws {
        let g = try await API.start(extra: "admin_listen: \"127.0.0.1:0\"")
        let admin = try #require(g.harness.server.adminAddress?.port)
        #expect(try await Self.get(g.harness.port, "/_ssogate/metrics").status == 404, "metrics are not served to the public")
        #expect(try await Self.get(g.harness.port, "/_ssogate/ready").status != 200)
        #expect(try await Self.get(g.harness.port, "/_ssogate/healthz").status == 200, "liveness stays where load balancers look")
        #expect(try await Self.get(admin, "/_ssogate/healthz").status == 200)
        #expect(try await Self.get(admin, "/_ssogate/ready").status == 200)
        let metrics = try await Self.get(admin, "/_ssogate/metrics")
        #expect(metrics.status == 200 && metrics.text.contains("ssogate_"))
        #expect(try await Self.get(admin, "/acme/private").status == 404, "the admin listener proxies nothing")
        await SSOFlowTests().stop(g)
    }

    @Test func readinessFailsWhileTheStoreDoesNotAnswerAndSaysSo() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let g = try await API.start(store: "sqlite:\(folder.path)/missing/state.db", extra: "admin_listen: \"127.0.0.1:0\"")
        let admin = try #require(g.harness.server.adminAddress?.port)
        let ready = try await Self.get(admin, "/_ssogate/ready")
        #expect(ready.status == 503 && ready.text.contains("state store"), "\(ready)")
        #expect(try await Self.get(admin, "/_ssogate/healthz").status == 200, "alive all the same")
        await SSOFlowTests().stop(g)
    }

    @Test func readinessWaitsForMetadataThatNeverLoaded() async throws {
        // An organization whose IdP metadata address answers nothing.
        let refused = try RefusingPort()
        let h = try await API.start { upstreamPort in
            """
            listen: "127.0.0.1:0"
            admin_listen: "127.0.0.1:0"
            public_url: "https://hub.example.test"
            upstream: "http://127.0.0.1:\(upstreamPort)"
            session: {secrets: ["0123456789abcdef0123456789abcdef-test"]}
            store: memory
            protected_paths: ["/{org}/"]
            organizations:
              - name: globex
                saml: {enabled: true, metadata_url: "http://127.0.0.1:\(refused.port)/metadata"}
            """
        }
        let admin = try #require(h.harness.server.adminAddress?.port)
        let ready = try await Self.get(admin, "/_ssogate/ready")
        #expect(ready.status == 503 && ready.text.contains("organization globex: its IdP metadata has not been loaded yet"), "\(ready)")
        await SSOFlowTests().stop(h)
    }
}
