import Foundation
@testable import Gateway
import NIOHTTP1
import StateStore
import TestFixtures
import TestSupport
import Testing
import Yams

/// docs/openapi.yaml against the running server: the same operations, answers with the
/// documented fields, and every documented status code produced by a real request.
@Suite("docs/openapi.yaml matches the settings API", .serialized)
struct OpenAPITests {
    typealias API = SettingsAPITests

    static func document() throws -> [String: Any] {
        let text = try String(contentsOf: Fixture.repository.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        return try #require(try Yams.load(yaml: text) as? [String: Any])
    }

    /// (path suffix after `/api/organizations/{org}/`, method) → documented status codes.
    static func operations() throws -> [String: Set<Int>] {
        let paths = try #require(try document()["paths"] as? [String: Any])
        var out: [String: Set<Int>] = [:]
        for (path, item) in paths {
            let suffix = String(path.dropFirst("/api/organizations/{org}/".count))
            for (method, operation) in (item as? [String: Any]) ?? [:] where method != "parameters" {
                let responses = ((operation as? [String: Any])?["responses"] as? [String: Any]) ?? [:]
                out["\(method.uppercased()) \(suffix)"] = Set(responses.keys.compactMap { Int($0) })
            }
        }
        return out
    }

    static func schema(_ name: String) throws -> [String: Any] {
        let components = try #require(try document()["components"] as? [String: Any])
        return try #require((components["schemas"] as? [String: Any])?[name] as? [String: Any])
    }

    static func required(_ name: String) throws -> Set<String> {
        Set(try schema(name)["required"] as? [String] ?? [])
    }

    @Test func theDocumentListsExactlyTheServersOperations() throws {
        let documented = Set(try Self.operations().keys)
        let served = Set(SettingsAPI.operations.map { "\($0.method.rawValue) \($0.path)" })
        #expect(documented == served)
    }

    @Test func answersHaveTheDocumentedFields() async throws {
        let g = try await API.start()
        let token = try await API.token(g)
        let state = try API.object(try await API.api(g, "GET", "/api/organizations/initech/sso", token: token))
        #expect(Set(state.keys) == (try Self.required("SSOState")))
        #expect(Set((state["sp"] as? [String: Any] ?? [:]).keys) == (try Self.required("SP")))
        let saved = try API.object(try await API.api(g, "PUT", "/api/organizations/initech/sso", token: token, json: try API.settingsJSON()))
        #expect(Set((saved["draft"] as? [String: Any] ?? [:]).keys) == (try Self.required("Settings")))
        let refused = try API.object(try await API.api(g, "PUT", "/api/organizations/initech/sso", token: token, json: #"{"certificates": []}"#))
        let problem = try #require((refused["errors"] as? [[String: Any]])?.first)
        #expect(Set(problem.keys) == (try Self.required("Problem")))
        let roles = try API.object(try await API.api(g, "PUT", "/api/organizations/initech/sso/roles", token: token, json: API.rolesJSON))
        #expect(Set((roles["role_mapping"] as? [String: Any] ?? [:]).keys) == (try Self.required("RoleMapping")))
        let access = try API.object(try await API.api(g, "PUT", "/api/organizations/initech/sso/access", token: token,
                                                      json: #"{"allowed_email_domains": ["initech.test"], "sso": "optional"}"#))
        let policy = try #require(access["access"] as? [String: Any])
        #expect(policy["allowed_email_domains"] as? [String] == ["initech.test"] && policy["sso"] as? String == "optional")
        let audit = try API.object(try await API.api(g, "GET", "/api/organizations/initech/audit", token: token))
        let event = try #require((audit["events"] as? [[String: Any]])?.first)
        #expect(Set(event.keys) == (try Self.required("AuditEvent")))
        let test = try API.object(try await API.api(g, "POST", "/api/organizations/initech/sso/test", token: token))
        #expect(test["url"] is String)
        await SSOFlowTests().stop(g)
    }

    /// Each documented status of each operation, made by a real request; and none that is
    /// not documented among them.
    @Test func everyDocumentedStatusIsOneTheServerGives() async throws {
        let documented = try Self.operations()
        let g = try await API.start()
        let token = try await API.token(g)
        let acmeToken = try await API.token(g, for: "acme")
        let body = try API.settingsJSON()
        func bodyFor(_ path: String, _ method: HTTPMethod) -> String? {
            switch (path, method) {
            case ("sso/roles", .PUT): return API.rolesJSON
            case ("sso/access", .PUT): return #"{"allowed_email_domains": ["initech.test"], "enforce_roles": true}"#
            case ("sessions/revoke", .POST): return #"{"subject": "alice@acme.test"}"#
            case (_, .PUT): return body
            default: return nil
            }
        }
        var seen: [String: Set<Int>] = [:]
        for (path, method) in SettingsAPI.operations {
            let key = "\(method.rawValue) \(path)"
            let json = bodyFor(path, method)
            for (org, credential) in [("initech", nil), ("initech", acmeToken), ("nobody", token), ("initech", token), ("acme", acmeToken)] as [(String, String?)] {
                let r = try await API.api(g, method.rawValue, "/api/organizations/\(org)/\(path)", token: credential, json: json)
                seen[key, default: []].insert(r.status)
            }
            if method == .PUT || path == "sessions/revoke" {
                seen[key, default: []].insert(try await API.api(g, method.rawValue, "/api/organizations/initech/\(path)", token: token, json: "[]").status)
            }
        }
        // 200 for enable: after a passing test.
        let url = try #require(try API.object(try await API.api(g, "POST", "/api/organizations/initech/sso/test", token: token))["url"] as? String)
        _ = try await API.runTest(g, url: url, signer: (SSOFlowTests.fixture("rsa-2048.key"), API.goodCertificate), assertion: "openapi-1")
        seen["POST sso/enable", default: []].insert(try await API.api(g, "POST", "/api/organizations/initech/sso/enable", token: token).status)
        // 409 for test and enable before anything was saved or tested.
        let fresh = try await API.start()
        let freshToken = try await API.token(fresh)
        for path in ["sso/test", "sso/enable"] {
            seen["POST \(path)", default: []].insert(try await API.api(fresh, "POST", "/api/organizations/initech/\(path)", token: freshToken).status)
        }
        await SSOFlowTests().stop(fresh)
        await SSOFlowTests().stop(g)

        // 503: a store that could not be opened; 429: over the login rates.
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let down = try await API.start(store: "sqlite:\(folder.path)/missing/state.db")
        let limited = try await API.start(extra: "logins: {per_client: \"1/h\", total: \"off\"}")
        for (path, method) in SettingsAPI.operations {
            let key = "\(method.rawValue) \(path)"
            let json = bodyFor(path, method)
            seen[key, default: []].insert(try await API.api(down, method.rawValue, "/api/organizations/initech/\(path)", token: token, json: json).status)
            for _ in 0..<2 {
                seen[key, default: []].insert(try await API.api(limited, method.rawValue, "/api/organizations/initech/\(path)", token: token, json: json).status)
            }
        }
        await SSOFlowTests().stop(down)
        await SSOFlowTests().stop(limited)

        for (key, statuses) in documented {
            #expect(statuses == seen[key, default: []], "\(key): documented \(statuses.sorted()), seen \(seen[key, default: []].sorted())")
        }
    }
}
