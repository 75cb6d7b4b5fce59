import Config
import Foundation
@testable import Gateway
import Logging
import NIOCore
import NIOPosix
import StateStore
import TestSupport
import Testing

/// The organization settings API (docs/CONTRACT.md "Organization settings: console and API")
/// over real sockets: the whole "Update and Test, then Enable" story of an org admin, every
/// status code of the SPEC's list, the audit log, and a second gateway on the same store
/// picking changes up without a reload.
@Suite("Organization settings API", .serialized)
struct SettingsAPITests {
    static let goodCertificate = SSOFlowTests.fixture("rsa-2048.crt")
    static let otherSigner = MetadataRefreshTests.newIdP

    /// `initech` is managed in the console (nothing in the file but its name); `acme` is
    /// file-managed as in the other tests.
    static func yaml(upstreamPort: Int, store: String, extra: String = "", publicURL: String = "https://hub.example.test") -> String {
        """
        listen: "127.0.0.1:0"
        public_url: "\(publicURL)"
        upstream: "http://127.0.0.1:\(upstreamPort)"
        session: {secrets: ["0123456789abcdef0123456789abcdef-test"]}
        store: "\(store)"
        \(extra)
        protected_paths: ["/{org}/"]
        organizations:
          - name: acme
            saml: {enabled: true, sign_on_url: "https://idp.example.test/sso", certificate_file: "\(goodCertificate)",
                   idp_entity_id: "http://www.okta.com/exk-test"}
          - name: initech
            id: "64f0c2initech"
            managed: console
            role_mapping: {attribute: groups, rules: [{value: hf-admins, role: admin}]}
        """
    }

    static func start(store: String = "memory", extra: String = "", publicURL: String = "https://hub.example.test") async throws -> SSOFlowTests.Gateway {
        try await start { upstreamPort in yaml(upstreamPort: upstreamPort, store: store, extra: extra, publicURL: publicURL) }
    }

    /// A gateway from the configuration `yaml` makes for the test upstream's port, its clock
    /// pinned to SSOFlowTests.now.
    static func start(yaml: (Int) -> String) async throws -> SSOFlowTests.Gateway {
        let upstream = try await TestUpstream.start()
        let configuration = try ConfigLoader.load(yaml: yaml(upstream.port), environment: [:], baseDirectory: ".")
        let logs = CapturedLogs()
        let server = GatewayServer(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                                   logger: Logger(label: "t") { _ in CapturingLogHandler(sink: logs) },
                                   accessLogger: Logger(label: "a") { _ in CapturingLogHandler(sink: CapturedLogs()) },
                                   clock: { SSOFlowTests.now })
        let address = try await server.start()
        return SSOFlowTests.Gateway(harness: Harness(server: server, port: address.port!, logs: logs, accessLogs: CapturedLogs()),
                                    upstream: upstream)
    }

    /// A token as `ssogate admin-token` makes one, stored in the gateway's store.
    static func token(_ g: SSOFlowTests.Gateway, for organization: String = "initech") async throws -> String {
        let made = try AdminToken.make(organization: organization, now: Int64(SSOFlowTests.now.timeIntervalSince1970), lifetime: 3600)
        try await g.harness.server.storeForTests.storeAdminToken(made.token)
        return made.text
    }

    static func api(_ g: SSOFlowTests.Gateway, _ method: String, _ path: String, token: String?, json: String? = nil) async throws -> RawHTTPClient.Response {
        var raw = "\(method) \(path) HTTP/1.1\r\nHost: hub.example.test\r\nAccept: application/json\r\n"
        if let token { raw += "Authorization: Bearer \(token)\r\n" }
        let body = json ?? ""
        raw += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        return try await request(g, raw)
    }

    /// A request made from a thread of its own: the API answers through tasks, which must
    /// not wait behind a test blocked on a cooperative thread (two on this machine).
    static func request(_ g: SSOFlowTests.Gateway, _ raw: String) async throws -> RawHTTPClient.Response {
        let harness = g.harness
        return try await offThePool { try harness.request(raw) }
    }

    /// A top-level string field of a JSON answer (nil when absent or not JSON).
    static func field(_ r: RawHTTPClient.Response, _ name: String) -> String? { object(r, name) as? String }
    static func object(_ r: RawHTTPClient.Response, _ name: String) -> Any? {
        ((try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any])?[name]
    }

    static func object(_ r: RawHTTPClient.Response) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any], "\(r)")
    }

    static func settingsJSON(url: String = "https://idp.example.test/initech/sso", certificate: String = goodCertificate,
                             entity: String = "http://www.okta.com/exk-test") throws -> String {
        let pem = try String(contentsOfFile: certificate, encoding: .utf8)
        let body: [String: Any] = ["sign_on_url": url, "idp_entity_id": entity, "certificates": [pem], "allow_idp_initiated": false]
        return String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
    }

    static let rolesJSON = #"{"attribute": "groups", "rules": [{"value": "engineering", "role": "write"}], "default_role": "read"}"#

    /// Follows the test URL: the login start, then the IdP's response (signed by `signer`)
    /// posted back with the login-state cookie. Returns the ACS's answer.
    static func runTest(_ g: SSOFlowTests.Gateway, url: String, signer: (key: String, certificate: String), assertion: String) async throws -> RawHTTPClient.Response {
        let path = String(try #require(url.range(of: "/organizations/")).lowerBound == url.startIndex ? url[...] : url[url.range(of: "/organizations/")!.lowerBound...])
        let start = try await request(g, "GET \(path) HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
        #expect(start.status == 302, "\(start)")
        let location = try #require(start.header("location"))
        let login = try #require(SSOFlowTests.cookie(start, "ssogate_session_login"))
        let response = try SSOFlowTests.samlResponse(inResponseTo: SSOFlowTests.requestID(in: location), assertionID: assertion,
                                                     org: "initech", signer: signer)
        return try await post(g, response: response, login: login)
    }

    /// The ACS post of a test or a login at `initech`.
    static func post(_ g: SSOFlowTests.Gateway, response: String, login: String) async throws -> RawHTTPClient.Response {
        let body = SSOFlowTests.formBody(["SAMLResponse": response])
        return try await request(g, "POST /organizations/initech/saml/consume HTTP/1.1\r\nHost: hub.example.test\r\nAccept: text/html\r\n"
                                   + "Cookie: ssogate_session_login=\(SSOFlowTests.value(login))\r\n"
                                   + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    // MARK: - Who may call it

    @Test func noTokenAWrongOneAnotherOrganizationsAndAnUnknownOrganizationAreRefused() async throws {
        let g = try await Self.start()
        #expect(try await Self.api(g, "GET", "/api/organizations/initech/sso", token: nil).status == 401)
        let wrong = try await Self.api(g, "GET", "/api/organizations/initech/sso", token: "ssga_not-a-token")
        #expect(wrong.status == 401 && wrong.header("www-authenticate") == "Bearer")
        let acmeToken = try await Self.token(g, for: "acme")
        let other = try await Self.api(g, "GET", "/api/organizations/initech/sso", token: acmeToken)
        #expect(other.status == 403 && Self.field(other, "error") == "forbidden")
        #expect(try await Self.api(g, "GET", "/api/organizations/nobody/sso", token: acmeToken).status == 404)
        // Paths of the application's own API under /api/organizations/ are proxied untouched.
        let app = try await Self.api(g, "GET", "/api/organizations/initech/members", token: nil)
        #expect(app.status == 200 && g.upstream.requests.contains { $0.uri == "/api/organizations/initech/members" })
        await SSOFlowTests().stop(g)
    }

    @Test func aFileManagedOrganizationIsReadOnly() async throws {
        let g = try await Self.start()
        let token = try await Self.token(g, for: "acme")
        let state = try Self.object(try await Self.api(g, "GET", "/api/organizations/acme/sso", token: token))
        #expect(state["managed"] as? String == "file" && state["enabled"] as? Bool == true)
        #expect((state["active"] as? [String: Any])?["sign_on_url"] as? String == "https://idp.example.test/sso")
        for (method, path, body) in [("PUT", "/api/organizations/acme/sso", try Self.settingsJSON()), ("POST", "/api/organizations/acme/sso/enable", ""),
                                     ("POST", "/api/organizations/acme/sso/disable", ""), ("POST", "/api/organizations/acme/sso/test", "")] {
            let r = try await Self.api(g, method, path, token: token, json: body)
            #expect(r.status == 409 && Self.field(r, "error") == "managed_by_file", "\(method) \(path)")
        }
        await SSOFlowTests().stop(g)
    }

    // MARK: - Invalid settings

    @Test func invalidSettingsAre422WithOneProblemPerField() async throws {
        let g = try await Self.start()
        let token = try await Self.token(g)
        func problems(_ json: String) async throws -> [String: String] {
            let r = try await Self.api(g, "PUT", "/api/organizations/initech/sso", token: token, json: json)
            #expect(r.status == 422, "\(r)")
            let errors = try #require(try Self.object(r)["errors"] as? [[String: String]])
            return Dictionary(errors.map { ($0["field"] ?? "", $0["message"] ?? "") }, uniquingKeysWith: { a, _ in a })
        }
        let garbage = #"{"sign_on_url": "ftp://idp", "certificates": ["not a certificate"], "allow_idp_initiated": false}"#
        let found = try await problems(garbage)
        #expect(found["sign_on_url"]?.contains("https") == true)
        #expect(found["certificates[0]"]?.contains("BEGIN CERTIFICATE") == true)
        #expect(try await problems(#"{"certificates": []}"#).keys.contains("sign_on_url"))
        #expect(try await problems(#"{"sign_on_url": "https://idp.example.test/sso", "certificates": [], "tested": {"ok": true}}"#).keys.contains("tested"))
        #expect(try await problems(#"{"sign_on_url": 7, "certificates": []}"#)["sign_on_url"] == "must be a string")
        #expect(try await problems("[1, 2]")["body"] != nil)
        // Nothing was saved.
        let state = try Self.object(try await Self.api(g, "GET", "/api/organizations/initech/sso", token: token))
        #expect(state["draft"] is NSNull)
        await SSOFlowTests().stop(g)
    }

    @Test func theRoleMappingIsReadAndReplacedAndABadRowIsNamed() async throws {
        let g = try await Self.start()
        let token = try await Self.token(g)
        let before = try Self.object(try await Self.api(g, "GET", "/api/organizations/initech/sso", token: token))
        let fileMapping = try #require(before["role_mapping"] as? [String: Any])
        #expect(fileMapping["attribute"] as? String == "groups" && (fileMapping["rules"] as? [[String: String]])?.first?["role"] == "admin")
        let saved = try await Self.api(g, "PUT", "/api/organizations/initech/sso/roles", token: token, json: Self.rolesJSON)
        #expect(saved.status == 200, "\(saved)")
        let mapping = try #require(try Self.object(saved)["role_mapping"] as? [String: Any])
        #expect((mapping["rules"] as? [[String: String]]) == [["value": "engineering", "role": "write"]] && mapping["default_role"] as? String == "read")
        // In force in the running gateway: its organization carries the new mapping.
        #expect(g.harness.server.runtimeForTests.configuration.organization(named: "initech")?.roleMapping?.rules.first?.value == "engineering")
        let bad = try await Self.api(g, "PUT", "/api/organizations/initech/sso/roles", token: token,
                                     json: #"{"attribute": "groups", "rules": [{"value": "x", "role": "boss"}], "default_role": "read"}"#)
        let errors = try #require(try Self.object(bad)["errors"] as? [[String: String]])
        #expect(bad.status == 422 && errors.first?["field"] == "role_mapping.rules[0]" && errors.first?["message"]?.contains("boss") == true)
        let unknown = try await Self.api(g, "PUT", "/api/organizations/initech/sso/roles", token: token, json: #"{"attribute": "groups", "rulez": []}"#)
        #expect(unknown.status == 422 && unknown.text.contains("rulez"))
        await SSOFlowTests().stop(g)
    }

    // MARK: - The org admin's story

    @Test func updateTestThenEnableAndAMemberLogsInWithTheNewSettings() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let g = try await Self.start(store: "sqlite:\(folder.path)/state.db")
        let token = try await Self.token(g)

        let empty = try Self.object(try await Self.api(g, "GET", "/api/organizations/initech/sso", token: token))
        #expect(empty["managed"] as? String == "console" && empty["id"] as? String == "64f0c2initech")
        #expect((empty["sp"] as? [String: String])?["acs_url"] == "https://hub.example.test/organizations/initech/saml/consume")
        #expect(empty["active"] is NSNull && empty["enabled"] as? Bool == false)
        // Members cannot log in yet, and there is nothing to enable or to test.
        #expect(try await Self.request(g, "GET /organizations/initech/sso HTTP/1.1\r\nHost: h\r\n\r\n").status == 404)
        #expect(try await Self.api(g, "POST", "/api/organizations/initech/sso/enable", token: token).status == 409)
        #expect(try await Self.api(g, "POST", "/api/organizations/initech/sso/test", token: token).status == 409)

        // Update: saved as a draft, not yet in force.
        let saved = try await Self.api(g, "PUT", "/api/organizations/initech/sso", token: token, json: try Self.settingsJSON())
        #expect(saved.status == 200, "\(saved)")
        let draft = try #require(try Self.object(saved)["draft"] as? [String: Any])
        #expect(draft["sign_on_url"] as? String == "https://idp.example.test/initech/sso" && draft["tested"] is NSNull)
        let enableUntested = try await Self.api(g, "POST", "/api/organizations/initech/sso/enable", token: token)
        #expect(enableUntested.status == 409 && Self.field(enableUntested, "error") == "not_tested")

        // Test: the login goes to the draft's IdP and the result page shows what it asserted.
        let test = try Self.object(try await Self.api(g, "POST", "/api/organizations/initech/sso/test", token: token))
        let url = try #require(test["url"] as? String)
        #expect(url.hasPrefix("https://hub.example.test/organizations/initech/sso?draft="))
        let result = try await Self.runTest(g, url: url, signer: (SSOFlowTests.fixture("rsa-2048.key"), Self.goodCertificate), assertion: "t-1")
        #expect(result.status == 200 && result.text.contains("alice@example.test"), "\(result)")
        #expect(SSOFlowTests.cookie(result, "ssogate_session") == nil, "a test never issues a session")
        let tested = try Self.object(try await Self.api(g, "GET", "/api/organizations/initech/sso", token: token))
        let active = try #require(tested["active"] as? [String: Any])
        #expect((active["tested"] as? [String: Any])?["ok"] as? Bool == true && tested["draft"] is NSNull)

        // Enable: members log in with the new settings.
        let enabled = try await Self.api(g, "POST", "/api/organizations/initech/sso/enable", token: token)
        #expect(enabled.status == 200 && Self.object(enabled, "enabled") as? Bool == true)
        let start = try await Self.request(g, "GET /organizations/initech/sso HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(start.status == 302 && start.header("location")?.hasPrefix("https://idp.example.test/initech/sso?") == true)
        let member = try await Self.logIn(g, signer: (SSOFlowTests.fixture("rsa-2048.key"), Self.goodCertificate), assertion: "m-1")
        #expect(member.status == 303 && SSOFlowTests.cookie(member, "ssogate_session") != nil, "\(member)")

        // A second draft with the wrong certificate: its test fails with the reason, Enable
        // changes nothing, and members keep logging in with the active settings.
        let wrong = try Self.settingsJSON(url: "https://idp.example.test/initech/new", certificate: Self.otherSigner.certificate)
        #expect(try await Self.api(g, "PUT", "/api/organizations/initech/sso", token: token, json: wrong).status == 200)
        let url2 = try #require(try Self.object(try await Self.api(g, "POST", "/api/organizations/initech/sso/test", token: token))["url"] as? String)
        let failed = try await Self.runTest(g, url: url2, signer: (SSOFlowTests.fixture("rsa-2048.key"), Self.goodCertificate), assertion: "t-2")
        #expect(failed.text.contains("signature_invalid"), "\(failed)")
        let after = try Self.object(try await Self.api(g, "GET", "/api/organizations/initech/sso", token: token))
        #expect(((after["draft"] as? [String: Any])?["tested"] as? [String: Any])?["reason"] as? String == "signature_invalid")
        #expect((after["active"] as? [String: Any])?["sign_on_url"] as? String == "https://idp.example.test/initech/sso")
        let again = try await Self.logIn(g, signer: (SSOFlowTests.fixture("rsa-2048.key"), Self.goodCertificate), assertion: "m-2")
        #expect(again.status == 303)

        // The audit log has each step, newest first, and exports.
        let audit = try Self.object(try await Self.api(g, "GET", "/api/organizations/initech/audit?limit=50", token: token))
        let events = try #require(audit["events"] as? [[String: Any]])
        let actions = events.map { "\($0["action"] as? String ?? "?") \($0["result"] as? String ?? "?")" }
        for expected in ["sso.settings.update success", "sso.enable failure", "sso.test success", "sso.enable success", "sso.login success", "sso.test failure"] {
            #expect(actions.contains(expected), "\(expected) in \(actions)")
        }
        let failedTest = try #require(events.first { $0["action"] as? String == "sso.test" && $0["result"] as? String == "failure" })
        #expect(failedTest["reason"] as? String == "signature_invalid" && failedTest["request_id"] is String)
        let csv = try await Self.api(g, "GET", "/api/organizations/initech/audit?format=csv&action=sso.login", token: token)
        #expect(csv.header("content-type")?.hasPrefix("text/csv") == true && csv.text.hasPrefix("time,action,organization,actor,result"))
        #expect(csv.text.split(separator: "\r\n").count == 3, "a header and the two member logins: \(csv.text)")
        let jsonl = try await Self.api(g, "GET", "/api/organizations/initech/audit?format=jsonl&result=failure", token: token)
        #expect(jsonl.text.split(separator: "\n").allSatisfy { $0.contains("\"result\":\"failure\"") })

        // Disable: members are turned away again.
        #expect(try await Self.api(g, "POST", "/api/organizations/initech/sso/disable", token: token).status == 200)
        #expect(try await Self.request(g, "GET /organizations/initech/sso HTTP/1.1\r\nHost: h\r\n\r\n").status == 404)
        await SSOFlowTests().stop(g)
    }

    /// An SP-initiated member login at `initech`.
    static func logIn(_ g: SSOFlowTests.Gateway, signer: (key: String, certificate: String), assertion: String) async throws -> RawHTTPClient.Response {
        let start = try await request(g, "GET /organizations/initech/sso?return_to=/initech/x HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
        let location = try #require(start.header("location"))
        let login = try #require(SSOFlowTests.cookie(start, "ssogate_session_login"))
        let response = try SSOFlowTests.samlResponse(inResponseTo: SSOFlowTests.requestID(in: location), assertionID: assertion,
                                                     org: "initech", signer: signer)
        return try await post(g, response: response, login: login)
    }

    // MARK: - Replicas

    @Test func aChangeOnOneGatewayIsInForceOnAnotherOnTheSameStoreWithinFiveSeconds() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try await Self.changeReachesTheOtherGateway(store: "sqlite:\(folder.path)/state.db")
    }

    /// Two gateways on one store: settings saved, tested and enabled on A start logins on B
    /// within 5 s, and A's token works on B.
    static func changeReachesTheOtherGateway(store: String, ready: (SSOFlowTests.Gateway) async throws -> Void = { _ in }) async throws {
        let a = try await Self.start(store: store)
        let b = try await Self.start(store: store)
        try await ready(a)
        try await ready(b)
        let token = try await Self.token(a)
        #expect(try await Self.api(a, "PUT", "/api/organizations/initech/sso", token: token, json: try Self.settingsJSON()).status == 200)
        let url = try #require(try Self.object(try await Self.api(a, "POST", "/api/organizations/initech/sso/test", token: token))["url"] as? String)
        let tested = try await Self.runTest(a, url: url, signer: (SSOFlowTests.fixture("rsa-2048.key"), Self.goodCertificate),
                                            assertion: "r-\(UUID().uuidString)")
        #expect(tested.status == 200, "\(tested)")
        #expect(try await Self.api(a, "POST", "/api/organizations/initech/sso/enable", token: token).status == 200)
        let changed = Date()
        var status = 0
        while Date().timeIntervalSince(changed) < 5 {
            status = try await Self.request(b, "GET /organizations/initech/sso HTTP/1.1\r\nHost: h\r\n\r\n").status
            if status == 302 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(status == 302, "B starts logins with A's settings within 5 s")
        // B also accepts A's token (the token is in the shared store).
        #expect(try await Self.api(b, "GET", "/api/organizations/initech/sso", token: token).status == 200)
        await SSOFlowTests().stop(a)
        await SSOFlowTests().stop(b)
    }
}
