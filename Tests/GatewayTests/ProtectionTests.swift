import Config
@testable import Access
@testable import Gateway
@testable import HTTPWire
import Testing

@Suite("Protected paths, navigation, return_to, roles")
struct ProtectionTests {
    static let cert: String = """
        -----BEGIN CERTIFICATE-----
        MIIDCzCCAfOgAwIBAgIUBjPHvxyEYQfiw1OVe8gG5ulcqfUwDQYJKoZIhvcNAQEL
        BQAwFTETMBEGA1UEAwwKZ29sZGVuLWlkcDAeFw0yNjExMjkwNjA5MzlaFw0zNjEx
        MjYwNjA5MzlaMBUxEzARBgNVBAMMCmdvbGRlbi1pZHAwggEiMA0GCSqGSIb3DQEB
        AQUAA4IBDwAwggEKAoIBAQDVcz98xFSqZn5MdDijTeqXYqXSle3kZEHXWwBYfiKA
        3psJ+S3L6xGn5tYj5vUw3dsQyEq65evdlyMmLkJOnryZdcGjf3yPq56PN99MhT2A
        o+ysDukvJ9wqrJ46kQfcXtI849L96E/sajLiopMLKzxT/wQ1nUez5tDur+Qvp/Gk
        ZpPowVd0/rn+MmUqG8NjyQXQgwtD6ayBmd37rbhpcx0q3bRu8R7zu6EFR4kvM7b3
        s4b8HRtQ0Bv28bsiIyWk63sVu8Ayc+LsmyG+G2cRvTAfOxyt5O/Y/3EYo+WsAmSI
        6gHZpVSFNVWqvAGU40CWvI/KWolhhxeucZUKDOc/pfy1AgMBAAGjUzBRMB0GA1Ud
        DgQWBBTKT63Bj0nd4xhM3Knkna96yAnYOTAfBgNVHSMEGDAWgBTKT63Bj0nd4xhM
        3Knkna96yAnYOTAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQA8
        RhNhxmgbc7d22SeM3U4nwfZCmOxZmokmUBuXIcNZ4bBniExOa01VrLWyNreshzRB
        TP9zBeEK+1qBBPHew00ZqUF32rVM9ybAB91g8CpUxAdmcBjYA5PL4yH8PR3ye8IY
        zDD5U9pf8/2ucbp4jkOKac2df+4TLMqSlCjBGMTZjOuH+zuwlRCjPcPv5XhMb8kV
        iPGDSjxNvedbdZfaJS/UV+Jp/u1qb+LLK2J3q8v6IUuYc9T7O6/JAIleu8xuiBlB
        11toF0IAIGQzcHhN5Dr+QMC7diO9IXY7SAwem3H5UKoNdVASZTzm3GMGl4cNzB0s
        5ux677O3w/0NBEcOSHPA
        -----END CERTIFICATE-----
        """.split(separator: "\n").map { "        " + $0 }.joined(separator: "\n")

    static let configuration: GatewayConfiguration = {
        let cert = Self.cert
        let yaml = """
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:9000"
        session: {secrets: ["0123456789abcdef0123456789abcdef"]}
        protected_paths: ["/{org}/", "/datasets/{org}/", "/spaces/{org}"]
        organizations:
          - name: acme
            saml:
              enabled: true
              sign_on_url: "https://idp.example/sso"
              certificate: |
        \(cert)
            role_mapping:
              attribute: groups
              rules: [{value: "engineering", role: "write"}, {value: "hf-admins", role: "admin"}, {value: "interns", role: "contributor"}]
          - name: dormant
            saml:
              enabled: false
              sign_on_url: "https://idp.example/sso"
              certificate: |
        \(cert)
        """
        return try! ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: ".")
    }()

    static var orgs: [String: GatewayConfiguration.Organization] {
        Dictionary(uniqueKeysWithValues: configuration.organizations.map { ($0.name, $0) })
    }

    func org(_ path: String) -> String? {
        Protection.organization(of: Substring(path), patterns: Self.configuration.protectedPaths, organizations: Self.orgs)?.name
    }

    @Test func patternsMatchConfiguredEnabledOrganizationsOnly() {
        #expect(org("/acme") == "acme")
        #expect(org("/acme/") == "acme")
        #expect(org("/acme/models/x") == "acme")
        #expect(org("/datasets/acme/data.csv") == "acme")
        #expect(org("/spaces/acme") == "acme")
        #expect(org("/spaces/acme/app") == nil)  // no trailing slash: that path only
        #expect(org("/dormant/x") == nil)        // SAML not enabled
        #expect(org("/unknown/x") == nil)
        #expect(org("/") == nil)
        #expect(org("/ACME/x") == "acme")        // names match without case
    }

    @Test(arguments: ["/acme;/private-model", "/acme;jsessionid=1/x", "/acme%3B/private-model", "/acme%3bx/y", "/datasets;/acme/x",
                      "/datasets%3B/acme/x", "/;x/acme/private", "/acme;", "/spaces;v=1/acme"])
    func semicolonParametersDoNotWalkAroundProtection(path: String) {
        // Jetty, Tomcat and Spring cut every segment at its first `;`.
        #expect(org(path) == "acme", "\(path)")
    }

    @Test(arguments: ["/Datasets/acme/x", "/DATASETS/ACME/x", "/SPACES/acme", "/Spaces/Acme"])
    func fixedPatternSegmentsMatchWithoutCase(path: String) {
        #expect(org(path) == "acme", "\(path)")
    }

    @Test func pathsAreSplitOnTheSlashByteNotOnCharacters() {
        // `/` followed by a combining mark is one Character; it is still a separator.
        #expect(org("/datasets/\u{301}/acme/x") == nil)
        #expect(org("/spaces/acme/\u{301}") == nil)
        #expect(org("/acme/\u{301}") == "acme")
        #expect(org("/\u{301}acme/x") == nil)
    }

    @Test func aPathNamingTwoOrganizationsWithAndWithoutParametersIsAmbiguous() throws {
        // An organization named like a fixed segment: `/datasets/;/acme` is datasets' page
        // as sent and acme's dataset as a servlet container reads it.
        let yaml = """
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:9000"
        session: {secrets: ["0123456789abcdef0123456789abcdef"]}
        protected_paths: ["/datasets/{org}/", "/{org}/"]
        organizations:
          - name: acme
            saml:
              enabled: true
              sign_on_url: "https://idp.example/sso"
              certificate: |
        \(Self.cert)
          - name: datasets
            saml:
              enabled: true
              sign_on_url: "https://idp.example/sso"
              certificate: |
        \(Self.cert)
        """
        let configuration = try ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: ".")
        let orgs = Dictionary(uniqueKeysWithValues: configuration.organizations.map { ($0.name, $0) })
        func match(_ path: String) -> Protection.Match {
            Protection.match(Substring(path), patterns: configuration.protectedPaths, organizations: orgs)
        }
        #expect(match("/datasets/;/acme/x") == .ambiguous)
        #expect(match("/datasets/acme/x") == .organization(orgs["acme"]!))
        #expect(match("/datasets/x;y") == .organization(orgs["datasets"]!))
    }

    @Test func onlyHTMLGetsAndHeadsAreNavigations() {
        #expect(Protection.isBrowserNavigation(method: "GET", accept: "text/html,application/xhtml+xml;q=0.9"))
        #expect(Protection.isBrowserNavigation(method: "HEAD", accept: "TEXT/HTML"))
        #expect(!Protection.isBrowserNavigation(method: "GET", accept: "application/json"))
        #expect(!Protection.isBrowserNavigation(method: "GET", accept: nil))
        #expect(!Protection.isBrowserNavigation(method: "POST", accept: "text/html"))
    }

    @Test(arguments: [
        ("/acme/private?x=1", "/acme/private?x=1"), ("//evil.example/x", "/"), ("/\\evil.example", "/"),
        ("https://evil.example/", "/"), ("javascript:alert(1)", "/"), ("/a\r\nSet-Cookie: x=1", "/"),
        ("", "/"), ("relative/path", "/"), ("/ok/\\back", "/"),
    ])
    func returnToIsALocalPath(input: String, expected: String) {
        #expect(Protection.safeReturnTo(input) == expected)
    }

    @Test func theMostPrivilegedMatchingRoleWins() throws {
        let mapping = try #require(Self.orgs["acme"]?.roleMapping)
        #expect(AccessRules.organizationRole(["engineering", "hf-admins"], mapping: mapping, policy: .open) == .admin)
        #expect(AccessRules.organizationRole(["interns", "engineering"], mapping: mapping, policy: .open) == .write)
        #expect(AccessRules.organizationRole(["nobody"], mapping: mapping, policy: .open) == .read)
        #expect(AccessRules.organizationRole([], mapping: mapping, policy: .open) == .read)
        #expect(AccessRules.organizationRole([], mapping: mapping, policy: AccessPolicy(defaultRole: "none")) == nil)
    }
}

@Suite("Path canonicalization")
struct PathCanonicalizerTests {
    @Test(arguments: [
        ("/acme/x", "/acme/x"), ("/%61cme/x", "/acme/x"), ("/%41CME", "/ACME"), ("//acme//x", "/acme/x"),
        ("/x/../acme/x", "/acme/x"), ("/./acme/./x/", "/acme/x/"), ("/../../acme", "/acme"), ("/acme/x/..", "/acme/"),
        ("/a%20b", "/a%20b"), ("/a%3fb", "/a%3Fb"), ("/", "/"), ("/acme/", "/acme/"), ("/%7Euser", "/~user"),
    ])
    func pathsHaveOneSpelling(input: String, expected: String) throws {
        #expect(try PathCanonicalizer.canonical(Substring(input)).get() == expected)
    }

    @Test(arguments: [
        ("/a%3bb", "/a%3Bb"), ("/acme;x/y", "/acme;x/y"), ("/%41cme%3B/../x", "/x"), ("/caf\u{E9}/x", "/caf\u{E9}/x"),
        ("/acme/\u{301}/x", "/acme/\u{301}/x"), ("/a/b/%2E%2E/c", "/a/c"), ("/a/.../b", "/a/.../b"),
    ])
    func moreSpellings(input: String, expected: String) throws {
        #expect(try PathCanonicalizer.canonical(Substring(input)).get() == expected)
    }

    @Test(arguments: ["/public/..;/acme/secret", "/public/.;x/acme", "/public/%2e%2e;/acme", "/public/..%3B/acme", "/a/..;", "/a%00b",
                      "/a%0ab", "/a\tb", "/a b", "/a%7Fb"])
    func dotSegmentsWithParametersAndControlBytesAreRefused(input: String) {
        #expect(throws: PathCanonicalizer.Rejection.self) { try PathCanonicalizer.canonical(Substring(input)).get() }
    }

    @Test(arguments: ["/acme%2Fx", "/acme%2fx", "/acme%5Cx", "/acme\\x", "/a%2", "/a%zz"])
    func ambiguousPathsAreRefused(input: String) {
        #expect(throws: PathCanonicalizer.Rejection.self) { try PathCanonicalizer.canonical(Substring(input)).get() }
    }
}
