@testable import Access
@testable import Config
import CryptoCore
import Foundation
@testable import Gateway
import Sessions
import StateStore
import TestFixtures
import TestSupport
import Testing

/// The organization access policy (docs/CONTRACT.md "Access policy"). One configuration where
/// every key is in force:
/// - acme: `default_role: none`, `allowed_email_domains: [acme.test]`, `enforce_roles`, a
///   resource group `secret` (`/acme/secret-*`), and two external collaborators: bob, whom
///   globex vouches for (globex limits its logins to globex.test), and carol, named with
///   the organization that vouches for her (partner).
/// - globex: `allowed_email_domains: [globex.test]`, `sso: optional`.
/// - partner: no policy.
@Suite("Access policy", .serialized)
struct AccessPolicyTests {
    typealias API = SettingsAPITests

    /// An organization's `saml:` line: the fixture IdP, logins from its tile allowed.
    static func saml(_ org: String, enabled: Bool = true) -> String {
        "saml: {enabled: \(enabled), sign_on_url: \"https://idp.example.test/\(org)\", certificate_file: \"\(SSOFlowTests.fixture("rsa-2048.crt"))\", "
            + "allow_idp_initiated: true}"
    }

    static func yaml(upstreamPort: Int) -> String {
        """
        listen: "127.0.0.1:0"
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:\(upstreamPort)"
        session: {secrets: ["0123456789abcdef0123456789abcdef-test"]}
        protected_paths: ["/{org}/"]
        store: memory
        organizations:
          - name: acme
            managed: console
            \(saml("acme"))
            role_mapping:
              attribute: groups
              rules:
                - {value: engineering, role: write}
                - {value: readers, role: read}
                - {value: hf-admins, role: admin}
                - {value: secret-team, role: write, resource_group: secret}
            access:
              default_role: none
              allowed_email_domains: [acme.test]
              enforce_roles: true
              contact: "it-help@acme.test"
              external_collaborators: ["bob@globex.test", {email: "carol@partner.test", role: write, organization: partner}]
              resource_groups: [{name: secret, paths: ["/acme/secret-*"]}]
          - name: globex
            \(saml("globex"))
            access: {allowed_email_domains: [globex.test], sso: optional}
          - name: partner
            \(saml("partner"))
        """
    }

    static let configuration: GatewayConfiguration = try! ConfigLoader.load(yaml: yaml(upstreamPort: 9), environment: [:], baseDirectory: ".")
    static var organizations: [String: GatewayConfiguration.Organization] {
        Dictionary(uniqueKeysWithValues: configuration.organizations.map { ($0.name, $0) })
    }

    static func grant(_ email: String, _ groups: [String] = []) -> SessionGrant {
        SessionGrant(id: "s-" + email, subject: email, email: email, groups: groups, role: nil, expires: 2_000_000_000, seen: 0)
    }

    // MARK: - The decision, one row per rule: an allowed and a refused case each

    struct Row: Sendable, CustomTestStringConvertible {
        let rule: String
        let vouchedBy: String
        let email: String
        let groups: [String]
        let path: String
        let method: String
        let expected: AccessRules.Verdict
        var testDescription: String { "\(rule): \(email) \(groups) \(method) \(path)" }

        init(_ rule: String, _ vouchedBy: String, _ email: String, _ groups: [String], _ method: String, _ path: String, _ expected: AccessRules.Verdict) {
            self.rule = rule
            self.vouchedBy = vouchedBy
            self.email = email
            self.groups = groups
            self.path = path
            self.method = method
            self.expected = expected
        }
    }

    static let rows: [Row] = [
        Row("role mapping", "acme", "ann@acme.test", ["engineering"], "GET", "/acme/model", .allow(role: .write, external: nil)),
        Row("role mapping: most privileged", "acme", "ann@acme.test", ["readers", "hf-admins"], "GET", "/acme/model", .allow(role: .admin, external: nil)),
        Row("default_role none", "acme", "ann@acme.test", ["marketing"], "GET", "/acme/model", .refuse(.accessDenied)),
        Row("allowed_email_domains", "acme", "ann@ACME.test", ["engineering"], "GET", "/acme/model", .allow(role: .write, external: nil)),
        Row("allowed_email_domains", "acme", "ann@evil.test", ["engineering"], "GET", "/acme/model", .refuse(.emailDomainNotAllowed)),
        Row("allowed_email_domains: a subdomain is another domain", "acme", "ann@x.acme.test", ["engineering"], "GET", "/acme/m",
            .refuse(.emailDomainNotAllowed)),
        Row("enforce_roles", "acme", "rex@acme.test", ["readers"], "GET", "/acme/model", .allow(role: .read, external: nil)),
        Row("enforce_roles: git fetch reads", "acme", "rex@acme.test", ["readers"], "POST", "/acme/model.git/git-upload-pack",
            .allow(role: .read, external: nil)),
        Row("enforce_roles", "acme", "rex@acme.test", ["readers"], "POST", "/acme/model/upload", .refuse(.readOnlyRole)),
        Row("enforce_roles", "acme", "rex@acme.test", ["readers"], "DELETE", "/acme/model", .refuse(.readOnlyRole)),
        Row("enforce_roles: write may write", "acme", "ann@acme.test", ["engineering"], "POST", "/acme/model/upload", .allow(role: .write, external: nil)),
        Row("resource group: its rule", "acme", "sam@acme.test", ["readers", "secret-team"], "POST", "/acme/secret-model/upload",
            .allow(role: .write, external: nil)),
        Row("resource group: outside it the organization role", "acme", "sam@acme.test", ["readers", "secret-team"], "POST", "/acme/model/upload",
            .refuse(.readOnlyRole)),
        Row("resource group: no rule for it", "acme", "ann@acme.test", ["engineering"], "GET", "/acme/secret-model", .refuse(.resourceGroupDenied)),
        Row("resource group: without case, with ; parameters", "acme", "ann@acme.test", ["engineering"], "GET", "/acme/SECRET-x;v=1/y",
            .refuse(.resourceGroupDenied)),
        Row("resource group: org admins keep theirs", "acme", "ada@acme.test", ["hf-admins"], "GET", "/acme/secret-model", .allow(role: .admin, external: nil)),
        Row("resource group: only members of the group", "acme", "gus@acme.test", ["secret-team"], "GET", "/acme/model", .refuse(.accessDenied)),
        Row("external collaborator: vouched by a domain's organization", "globex", "bob@globex.test", [], "GET", "/acme/model",
            .allow(role: .read, external: "globex")),
        Row("external collaborator: read only under enforce_roles", "globex", "bob@globex.test", [], "PUT", "/acme/model", .refuse(.readOnlyRole)),
        Row("external collaborator: not from another organization's IdP", "partner", "bob@globex.test", [], "GET", "/acme/model",
            .refuse(.accessDenied)),
        Row("external collaborator: named organization", "partner", "carol@partner.test", [], "POST", "/acme/model", .allow(role: .write, external: "partner")),
        Row("external collaborator: named organization only", "globex", "carol@partner.test", [], "GET", "/acme/model", .refuse(.accessDenied)),
        Row("external collaborator: not listed", "globex", "dan@globex.test", [], "GET", "/acme/model", .refuse(.accessDenied)),
        Row("external collaborator: never in a resource group", "globex", "bob@globex.test", [], "GET", "/acme/secret-x", .refuse(.resourceGroupDenied)),
        Row("no role mapping: no role", "partner", "pat@partner.test", [], "DELETE", "/partner/x", .allow(role: nil, external: nil)),
    ]

    @Test(arguments: rows)
    func everyRuleAllowsAndRefuses(_ row: Row) throws {
        let orgs = Self.organizations
        let rules = AccessRules(organizations: orgs)
        let org = try #require(orgs[row.path.split(separator: "/")[0].description])
        let verdict = rules.decide(org, grant: Self.grant(row.email, row.groups), vouchedBy: row.vouchedBy, path: Substring(row.path), method: row.method)
        #expect(verdict == row.expected)
    }

    @Test func everyRefusalHasAnAllowedAndARefusedRow() {
        for refusal in AccessRules.Refusal.allCases {
            #expect(Self.rows.contains { $0.expected == .refuse(refusal) }, "\(refusal)")
        }
        let rules = Set(Self.rows.map { $0.rule.split(separator: ":")[0] })
        for rule in rules {
            let rows = Self.rows.filter { $0.rule.hasPrefix(rule) }
            #expect(rows.contains { if case .allow = $0.expected { true } else { false } } || rule == "default_role none", "\(rule) has an allowed row")
        }
    }

    @Test func aLoginIsRefusedOnlyForWhatNoRequestCouldPass() {
        let rules = AccessRules(organizations: Self.organizations)
        let acme = Self.organizations["acme"]!
        #expect(rules.admitsLogin(acme, email: "ann@acme.test", values: ["engineering"]) == nil)
        #expect(rules.admitsLogin(acme, email: "gus@acme.test", values: ["secret-team"]) == nil, "a role in a resource group is a reason to log in")
        #expect(rules.admitsLogin(acme, email: "ann@acme.test", values: ["marketing"]) == .accessDenied)
        #expect(rules.admitsLogin(acme, email: "ann@evil.test", values: ["engineering"]) == .emailDomainNotAllowed)
        #expect(rules.admitsLogin(acme, email: nil, values: ["engineering"]) == .emailDomainNotAllowed)
    }

    @Test func patternsOverlapWhenSomePathMatchesBoth() {
        #expect(ResourcePattern.overlap("/acme/secret-*", "/acme/*-data"))
        #expect(ResourcePattern.overlap("/acme/secret-*", "/acme/secret-models/x"))
        #expect(!ResourcePattern.overlap("/acme/secret-*", "/acme/public-*"))
        #expect(!ResourcePattern.overlap("/acme/a*b", "/acme/c*"))
        #expect(ResourcePattern.overlap("/acme/*", "/acme/anything"))
    }

    // MARK: - Through the gateway

    static func start() async throws -> SSOFlowTests.Gateway {
        try await API.start(yaml: { Self.yaml(upstreamPort: $0) })
    }

    /// An IdP-initiated login at `org` as `email` with `groups`, added to `cookie`'s session.
    static func logIn(_ g: SSOFlowTests.Gateway, org: String, email: String, groups: [String], cookie: String? = nil,
                      accept: String = "text/html") async throws -> RawHTTPClient.Response {
        var shape = SAMLResponseShape.forOrganization(org)
        shape.inResponseTo = nil
        shape.assertionID = "a-\(UUID().uuidString)"
        shape.nameID = email
        shape.email = email
        shape.groups = groups
        let key = try PrivateKey(pem: String(contentsOfFile: SSOFlowTests.fixture("rsa-2048.key"), encoding: .utf8))
        let cert = try X509Certificate.parseAll(pem: String(contentsOfFile: SSOFlowTests.fixture("rsa-2048.crt"), encoding: .utf8))[0]
        let body = SSOFlowTests.formBody(["SAMLResponse": Data(try shape.signed(.assertion, key: key, certificate: cert)).base64EncodedString(),
                                          "RelayState": "/\(org)/home"])
        return try await API.request(g, "POST /organizations/\(org)/saml/consume HTTP/1.1\r\nHost: hub.example.test\r\nAccept: \(accept)\r\n"
                                        + (cookie.map { "Cookie: \($0)\r\n" } ?? "")
                                        + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    /// The session cookie pair a successful login set.
    static func session(_ r: RawHTTPClient.Response) throws -> String {
        "ssogate_session=" + SSOFlowTests.value(try #require(SSOFlowTests.cookie(r, "ssogate_session"), "\(r)"))
    }

    static func send(_ g: SSOFlowTests.Gateway, _ method: String, _ path: String, cookie: String?, accept: String = "application/json",
                     authorization: String? = nil) async throws -> RawHTTPClient.Response {
        try await API.request(g, "\(method) \(path) HTTP/1.1\r\nHost: hub.example.test\r\nAccept: \(accept)\r\nContent-Length: 0\r\n"
                                 + (cookie.map { "Cookie: \($0)\r\n" } ?? "") + (authorization.map { "Authorization: \($0)\r\n" } ?? "") + "\r\n")
    }

    /// The audit events of `organization` with `action`, once the queue reached the store.
    static func events(_ g: SSOFlowTests.Gateway, _ organization: String, action: String, count: Int) async throws -> [AuditEvent] {
        for _ in 0..<50 {
            let events = try await g.harness.server.storeForTests.events(AuditQuery(organization: organization, limit: 50, action: action))
            if events.count >= count { return events }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await g.harness.server.storeForTests.events(AuditQuery(organization: organization, limit: 50, action: action))
    }

    @Test func loginsThePolicyRefusesGetAPageThatSaysWhyAndNoSession() async throws {
        let g = try await Self.start()
        let outside = try await Self.logIn(g, org: "acme", email: "mallory@evil.test", groups: ["engineering"])
        #expect(outside.status == 403 && SSOFlowTests.cookie(outside, "ssogate_session") == nil)
        #expect(outside.text.contains("id=\"ssogate-reason\">email_domain_not_allowed"))
        #expect(outside.text.contains("mallory@evil.test") && outside.text.contains("acme.test") && outside.text.contains("it-help@acme.test"))
        let unmapped = try await Self.logIn(g, org: "acme", email: "ann@acme.test", groups: ["marketing"], accept: "application/json")
        #expect(unmapped.status == 403)
        #expect(API.field(unmapped, "error") == "access_denied" && API.field(unmapped, "subject") == "ann@acme.test")
        let metrics = try await API.request(g, "GET /_ssogate/metrics HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(metrics.text.contains("ssogate_logins_total{organization=\"acme\",result=\"email_domain_not_allowed\"} 1"), "\(metrics.text)")
        // A name no organization has is counted as unknown, not as a label of its own.
        let nobody = "nobody-\(UUID().uuidString.prefix(8))"
        _ = try await Self.logIn(g, org: nobody, email: "x@acme.test", groups: [])
        let after = try await API.request(g, "GET /_ssogate/metrics HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(after.text.contains("ssogate_logins_total{organization=\"unknown\",result=\"unknown_organization\"} 1") && !after.text.contains("nobody-"),
                "\(after.text)")
        #expect(try await g.harness.server.storeForTests.events(AuditQuery(organization: nobody, limit: 5)).isEmpty, "no audit event under the client's name")
        let logins = try await Self.events(g, "acme", action: "sso.login", count: 2)
        #expect(Set(logins.compactMap(\.reason)) == ["email_domain_not_allowed", "access_denied"])
        #expect(g.upstream.requests.isEmpty)
        await SSOFlowTests().stop(g)
    }

    @Test func eachKeyAllowsAndRefusesThroughTheGatewayAndIsAudited() async throws {
        let g = try await Self.start()
        // enforce_roles: a reader reads, and may not write.
        let reader = try Self.session(try await Self.logIn(g, org: "acme", email: "rex@acme.test", groups: ["readers"]))
        #expect(try await Self.send(g, "GET", "/acme/model", cookie: reader).status == 200)
        #expect(g.upstream.requests.last?.values("x-sso-role") == ["read"])
        let write = try await Self.send(g, "POST", "/acme/model/upload", cookie: reader)
        #expect(write.status == 403 && API.field(write, "error") == "role_read_only" && API.field(write, "role") == "read")
        let form = try await Self.send(g, "POST", "/acme/model/upload", cookie: reader, accept: "text/html,application/xhtml+xml")
        #expect(form.status == 403 && form.text.contains("You can view this, but not change it"), "a browser's form post gets the page")
        // Resource groups: the group's own role inside, the organization's outside.
        let secret = try Self.session(try await Self.logIn(g, org: "acme", email: "sam@acme.test", groups: ["readers", "secret-team"]))
        #expect(try await Self.send(g, "POST", "/acme/secret-model/upload", cookie: secret).status == 200)
        #expect(g.upstream.requests.last?.values("x-sso-role") == ["write"])
        #expect(try await Self.send(g, "GET", "/acme/model", cookie: secret).status == 200)
        #expect(g.upstream.requests.last?.values("x-sso-role") == ["read"])
        let engineer = try Self.session(try await Self.logIn(g, org: "acme", email: "ann@acme.test", groups: ["engineering"]))
        let page = try await Self.send(g, "GET", "/acme/secret-model", cookie: engineer, accept: "text/html")
        #expect(page.status == 403 && page.text.contains("resource group &quot;secret&quot;") && page.text.contains("ann@acme.test"))
        #expect(page.header("content-type") == "text/html; charset=utf-8")
        // External collaborators: bob through globex reads acme with the role and who vouched.
        let bob = try Self.session(try await Self.logIn(g, org: "globex", email: "bob@globex.test", groups: ["hf-admins"]))
        #expect(try await Self.send(g, "GET", "/acme/model", cookie: bob).status == 200)
        let seen = try #require(g.upstream.requests.last)
        #expect(seen.values("x-forwarded-user") == ["bob@globex.test"] && seen.values("x-sso-role") == ["read"])
        #expect(seen.values("x-forwarded-groups").isEmpty, "globex's groups are not acme's: never sent for acme's content")
        #expect(seen.values("x-sso-organization") == ["acme"] && seen.values("x-sso-identity-organization") == ["globex"])
        // dan of globex is no collaborator: acme asks him to log in to acme (its 401).
        let dan = try Self.session(try await Self.logIn(g, org: "globex", email: "dan@globex.test", groups: []))
        #expect(try await Self.send(g, "GET", "/acme/model", cookie: dan).status == 401)
        // A client's own X-SSO-Identity-Organization never reaches the upstream.
        _ = try await API.request(g, "GET /acme/model HTTP/1.1\r\nHost: h\r\nCookie: \(engineer)\r\nX-SSO-Identity-Organization: globex\r\n\r\n")
        #expect(g.upstream.requests.last?.values("x-sso-identity-organization").isEmpty == true)
        // Each refusal once in the audit log (a minute's repeats are one event), and counted.
        _ = try await Self.send(g, "POST", "/acme/model/upload", cookie: reader)
        let denied = try await Self.events(g, "acme", action: "access.denied", count: 2)
        #expect(denied.map(\.reason).sorted { ($0 ?? "") < ($1 ?? "") } == ["resource_group_denied", "role_read_only"])
        #expect(denied.contains { $0.subject == "rex@acme.test" && $0.result == "failure" })
        let metrics = try await API.request(g, "GET /_ssogate/metrics HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(metrics.text.contains("ssogate_access_refusals_total{organization=\"acme\",reason=\"role_read_only\"} 3"), "\(metrics.text.suffix(800))")
        await SSOFlowTests().stop(g)
    }

    @Test func optionalSSOForwardsAPIClientsAnonymouslyAndShowsBrowsersTheBanner() async throws {
        let g = try await Self.start()
        let api = try await Self.send(g, "GET", "/globex/model", cookie: nil)
        #expect(api.status == 200)
        #expect(g.upstream.requests.last?.values("x-forwarded-user").isEmpty == true)
        let browser = try await Self.send(g, "GET", "/globex/echo", cookie: nil, accept: "text/html")
        #expect(browser.status == 200)
        // Required SSO (acme) still answers 401 to the same request.
        #expect(try await Self.send(g, "GET", "/acme/model", cookie: nil).status == 401)
        // A member who logged in is identified; a bad token is still refused.
        let member = try Self.session(try await Self.logIn(g, org: "globex", email: "gil@globex.test", groups: []))
        #expect(try await Self.send(g, "GET", "/globex/model", cookie: member).status == 200)
        #expect(g.upstream.requests.last?.values("x-forwarded-user") == ["gil@globex.test"])
        #expect(try await Self.send(g, "GET", "/globex/model", cookie: nil, authorization: "Bearer ssg_nope").status == 401)
        await SSOFlowTests().stop(g)
    }

    @Test func tokensGoThroughTheSamePolicy() async throws {
        let g = try await Self.start()
        let reader = try Self.session(try await Self.logIn(g, org: "acme", email: "rex@acme.test", groups: ["readers"]))
        let made = try await TokenTests.make(g, cookie: reader, name: "ci")
        #expect(made.status == 201, "\(made)")
        let token = try TokenTests.token(made).text
        #expect(try await TokenTests.get(g, "/acme/model", "Bearer \(token)") == (200, "rex@acme.test"))
        #expect(try await TokenTests.get(g, "/acme/model.git/git-upload-pack", "Bearer \(token)", method: "POST").0 == 200, "git fetch reads")
        #expect(try await TokenTests.get(g, "/acme/model/upload", "Bearer \(token)", method: "POST").0 == 403, "enforce_roles")
        #expect(try await TokenTests.get(g, "/acme/secret-x", "Bearer \(token)").0 == 403, "resource group")
        await SSOFlowTests().stop(g)
    }

    @Test func overHTTP2TheSameAnswers() async throws {
        let g = try await Self.start()
        let reader = try Self.session(try await Self.logIn(g, org: "acme", email: "rex@acme.test", groups: ["readers"]))
        let bob = try Self.session(try await Self.logIn(g, org: "globex", email: "bob@globex.test", groups: []))
        let port = g.harness.port
        func h2(_ method: String, _ path: String, cookie: String?, accept: String = "application/json") async throws -> (version: String, status: Int, body: String) {
            let output = try await offThePool {
                try Curl.run(["--http2-prior-knowledge", "-s", "-X", method, "-H", "Accept: \(accept)", "-H", "Host: hub.example.test"]
                             + (cookie.map { ["-H", "Cookie: \($0)"] } ?? []) + ["-w", "\n%{http_version} %{http_code}", "http://127.0.0.1:\(port)\(path)"])
            }
            let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
            let last = lines.last?.split(separator: " ") ?? []
            return (String(last.first ?? ""), Int(last.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }
        let read = try await h2("GET", "/acme/model", cookie: reader)
        #expect(read.version == "2" && read.status == 200)
        let write = try await h2("POST", "/acme/model/upload", cookie: reader)
        #expect(write.version == "2" && write.status == 403 && write.body.contains("\"role_read_only\""))
        #expect(try await h2("GET", "/acme/secret-model", cookie: reader, accept: "text/html").body.contains("resource_group_denied"))
        #expect(try await h2("GET", "/acme/model", cookie: bob).status == 200)
        #expect(g.upstream.requests.last?.values("x-sso-identity-organization") == ["globex"])
        #expect(try await h2("GET", "/globex/model", cookie: nil).status == 200, "optional SSO")
        await SSOFlowTests().stop(g)
    }

    // MARK: - Editing the policy

    @Test func theAPIReplacesThePolicyAndNamesEachProblem() async throws {
        let g = try await Self.start()
        let token = try await API.token(g, for: "acme")
        func put(_ json: String) async throws -> RawHTTPClient.Response {
            try await API.api(g, "PUT", "/api/organizations/acme/sso/access", token: token, json: json)
        }
        let bad = try await put(#"{"allowed_email_domains": ["acme.test"], "external_collaborators": [{"email": "eve@acme.test"}], "colour": 1}"#)
        #expect(bad.status == 422 && bad.text.contains("colour"))
        let own = try await put(#"{"allowed_email_domains": ["acme.test"], "external_collaborators": [{"email": "eve@acme.test"}]}"#)
        #expect(own.status == 422 && own.text.contains("access.external_collaborators[0]"), "\(own)")
        // Opened up: any domain, no enforcement, nobody refused for lack of a role.
        let groups = #""resource_groups": [{"name": "secret", "paths": ["/acme/secret-*"]}]"#
        let orphan = try await put(#"{"contact": "ops@acme.test"}"#)
        #expect(orphan.status == 422 && orphan.text.contains("access.resource_groups") && orphan.text.contains("secret"), "a role row names it")
        let open = try await put(#"{"allowed_email_domains": [], "enforce_roles": false, "contact": "ops@acme.test", "# + groups + "}")
        #expect(open.status == 200, "\(open)")
        let access = try #require(API.object(open, "access") as? [String: Any])
        #expect(access["contact"] as? String == "ops@acme.test" && access["enforce_roles"] as? Bool == false)
        let outsider = try await Self.logIn(g, org: "acme", email: "mallory@evil.test", groups: ["engineering"])
        #expect(outsider.status == 303, "the saved policy is in force at once")
        let mallory = try Self.session(outsider)
        #expect(try await Self.send(g, "GET", "/acme/model", cookie: mallory).status == 200)
        #expect(try await Self.send(g, "GET", "/elsewhere", cookie: mallory).status == 200)
        #expect(g.upstream.requests.last?.values("x-sso-organizations") == ["acme"])
        // Closed again: her session's requests are refused at once, and off protected paths
        // her acme grant is no longer one the request holds.
        #expect(try await put(#"{"allowed_email_domains": ["acme.test"], "# + groups + "}").status == 200)
        #expect(try await Self.send(g, "GET", "/acme/model", cookie: mallory).status == 403)
        #expect(try await Self.send(g, "GET", "/elsewhere", cookie: mallory).status == 200)
        #expect(g.upstream.requests.last?.values("x-sso-organizations").isEmpty == true)
        let events = try await Self.events(g, "acme", action: "sso.settings.update", count: 2)
        #expect(events.contains { $0.reason == "access_policy" && $0.result == "success" })
        await SSOFlowTests().stop(g)
    }

    @Test func theConsoleEditsThePolicyAndKeepsARefusedForm() async throws {
        let g = try await Self.start()
        let admin = try Self.session(try await Self.logIn(g, org: "acme", email: "ada@acme.test", groups: ["hf-admins"]))
        let page = try await ConsoleTests.page(g, "/organizations/acme/settings/sso", cookie: admin)
        #expect(page.status == 200 && page.text.contains("id=\"ssogate-policy\"") && page.text.contains("bob@globex.test = read"))
        let csrf = try ConsoleTests.csrf(page)
        var form = ["csrf": csrf, "refuse_unmapped": "on", "allowed_domains": "acme.test", "enforce_roles": "on", "sso_mode": "required",
                    "collaborators": "bob@globex.test = read\nzed@acme.test = write", "resource_groups": "secret: /acme/secret-*", "contact": "it-help@acme.test"]
        let refused = try await ConsoleTests.post(g, "/organizations/acme/settings/sso/access", cookie: admin, form: form)
        #expect(refused.status == 422 && refused.text.contains("zed@acme.test = write") && refused.text.contains("own domain"))
        form["collaborators"] = "bob@globex.test = write"
        form["enforce_roles"] = nil
        let saved = try await ConsoleTests.post(g, "/organizations/acme/settings/sso/access", cookie: admin, form: form)
        #expect(saved.status == 303 && saved.header("location") == "/organizations/acme/settings/sso?done=access")
        let bob = try Self.session(try await Self.logIn(g, org: "globex", email: "bob@globex.test", groups: []))
        #expect(try await Self.send(g, "POST", "/acme/model", cookie: bob).status == 200)
        #expect(g.upstream.requests.last?.values("x-sso-role") == ["write"])
        await SSOFlowTests().stop(g)
    }
}

/// `curl`, for requests over HTTP/2 with prior knowledge (h2c).
enum Curl {
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
