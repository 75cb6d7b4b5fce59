import Config
import CryptoCore
import Foundation
import Logging
import NIOPosix
@testable import SAML
import StateStore
import Testing

/// The state stores behind one interface, each held to the same rules (docs/CONTRACT.md "State
/// store", rules 8 and 9): an ID is spent once until its expiry, a login's IDs are spent
/// all or none, and of many racing logins with the same ID exactly one gets through.
/// Memory and SQLite always run; PostgreSQL when `make test` started one
/// (SSOGATE_TEST_POSTGRES).
@Suite("State stores: the same rules for each", .serialized)
struct StateStoreTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case memory, sqlite, postgres
        var testDescription: String { rawValue }
    }

    static var kinds: [Kind] {
        Kind.allCases.filter { $0 != .postgres || PostgresStoreTests.enabled }
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// A fresh store of `kind`; `finish` closes it and removes its files.
    static func open(_ kind: Kind) async throws -> (store: GatewayStore, finish: () async -> Void) {
        switch kind {
        case .memory:
            return (MemoryStore(), {})
        case .sqlite:
            let folder = try TemporaryFolder()
            let store = try SQLiteStore(path: folder.path + "/state.db", logger: Logger(label: "test"))
            return (store, { try? store.close(); folder.remove() })
        case .postgres:
            let settings = try #require(PostgresStoreTests.settings)
            // The rules are what is tested here, not the 3 s timeout under this suite's load.
            let store = PostgresStore(settings, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"), timeout: .seconds(15))
            let running = Task { await store.run() }
            for _ in 0..<50 where (try? await store.migrate()) == nil {
                try await Task.sleep(for: .milliseconds(100))
            }
            return (store, { running.cancel() })
        }
    }

    static func spend(_ ids: [String], until: Date = now.addingTimeInterval(300)) -> [ReplaySpend] {
        ids.map { ReplaySpend(id: $0, until: until, refusal: SAMLError("assertion_replayed", "already used")) }
    }

    static func unique(_ name: String) -> String { "\(name)-\(UUID().uuidString)" }

    @Test(arguments: kinds)
    func anIDIsSpentOnceUntilItsExpiry(kind: Kind) async throws {
        let (store, finish) = try await Self.open(kind)
        let id = Self.unique("a")
        #expect(await store.spend(Self.spend([id]), now: Self.now) == .spent)
        #expect(await store.spend(Self.spend([id]), now: Self.now.addingTimeInterval(299)) == .alreadySpent(Self.spend([id])[0]))
        // Past its expiry the ID may be used again: the assertion it named is refused by its time.
        #expect(await store.spend(Self.spend([id], until: Self.now.addingTimeInterval(900)), now: Self.now.addingTimeInterval(301)) == .spent)
        await finish()
    }

    @Test(arguments: kinds)
    func aLoginsIDsAreSpentAllOrNone(kind: Kind) async throws {
        let (store, finish) = try await Self.open(kind)
        let live = Self.unique("live"), fresh = Self.unique("fresh")
        #expect(await store.spend(Self.spend([live]), now: Self.now) == .spent)
        #expect(await store.spend(Self.spend([fresh, live]), now: Self.now) == .alreadySpent(Self.spend([live])[0]))
        // The refused login recorded nothing: its other ID is still free.
        #expect(await store.spend(Self.spend([fresh]), now: Self.now) == .spent)
        await finish()
    }

    @Test(arguments: kinds)
    func ofManyRacingLoginsWithOneIDExactlyOneGetsThrough(kind: Kind) async throws {
        let (store, finish) = try await Self.open(kind)
        let shared = Self.unique("raced")
        let outcomes = await withTaskGroup(of: StoreOutcome.self) { group in
            for caller in 0..<16 {
                group.addTask { await store.spend(Self.spend(["request-\(caller)-\(shared)", shared]), now: Self.now) }
            }
            return await group.reduce(into: [StoreOutcome]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == .spent }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { if case .alreadySpent = $0 { return true } else { return false } }.count == 15)
        await finish()
    }

    // MARK: - Organization settings, audit, admin tokens

    static func idp(_ url: String = "https://idp.example.test/sso") throws -> IdPSettings {
        IdPSettings(signOnURL: url, idpEntityID: "http://www.okta.com/exk-test",
                    certificates: [try String(contentsOfFile: SSOFlowTests.fixture("rsa-2048.crt"), encoding: .utf8)], allowIdPInitiated: false)
    }

    @Test(arguments: kinds)
    func aDraftBecomesActiveOnlyWhenItsOwnTestPasses(kind: Kind) async throws {
        let (store, finish) = try await Self.open(kind)
        let org = Self.unique("org")
        let before = try await store.settingsVersion()
        let first = try await store.saveDraft(try Self.idp(), organization: org)
        #expect(first.draft != nil && first.active == nil && first.draftRevision == 1)
        #expect(try await store.settingsVersion() > before)
        // A failed test keeps it a draft, with the reason.
        let failed = try await store.recordTest(organization: org, revision: 1, result: TestResult(ok: false, at: 10, reason: "signature_invalid"))
        #expect(failed?.active == nil && failed?.draftTested?.reason == "signature_invalid")
        // A result for a draft since replaced is not applied.
        _ = try await store.saveDraft(try Self.idp("https://idp.example.test/other"), organization: org)
        #expect(try await store.recordTest(organization: org, revision: 1, result: TestResult(ok: true, at: 11, reason: nil)) == nil)
        let passed = try await store.recordTest(organization: org, revision: 2, result: TestResult(ok: true, at: 12, reason: nil))
        #expect(passed?.active?.signOnURL == "https://idp.example.test/other" && passed?.draft == nil && passed?.activeTested?.ok == true)
        #expect(try await store.loadSettings().settings[org] == passed)
        await finish()
    }

    @Test(arguments: kinds)
    func enablingNeedsSettingsThatPassedATest(kind: Kind) async throws {
        let (store, finish) = try await Self.open(kind)
        let org = Self.unique("org")
        #expect(try await store.setEnabled(true, organization: org) == .notTested)
        _ = try await store.saveDraft(try Self.idp(), organization: org)
        #expect(try await store.setEnabled(true, organization: org) == .notTested)
        _ = try await store.recordTest(organization: org, revision: 1, result: TestResult(ok: true, at: 1, reason: nil))
        guard case .done(let on) = try await store.setEnabled(true, organization: org) else { Issue.record("not enabled"); return }
        #expect(on.enabled)
        guard case .done(let off) = try await store.setEnabled(false, organization: org) else { Issue.record("not disabled"); return }
        #expect(!off.enabled && off.active != nil)
        await finish()
    }

    @Test(arguments: kinds)
    func aRoleMappingIsStoredWithTheSettingsAndCanBeCleared(kind: Kind) async throws {
        let (store, finish) = try await Self.open(kind)
        let org = Self.unique("org")
        let mapping = StoredRoleMapping(attribute: "groups", rules: [.init(value: "hf-admins", role: "admin")], defaultRole: "read")
        let before = try await store.settingsVersion()
        #expect(try await store.setRoleMapping(mapping, organization: org).roleMapping == mapping)
        #expect(try await store.settingsVersion() > before)
        #expect(try await store.loadSettings().settings[org]?.roleMapping == mapping)
        #expect(try await store.setRoleMapping(nil, organization: org).roleMapping == nil)
        await finish()
    }

    @Test(arguments: kinds)
    func aSeedIsStoredOnlyForAnOrganizationWithoutSettings(kind: Kind) async throws {
        let (store, finish) = try await Self.open(kind)
        let org = Self.unique("org")
        let seed = OrganizationSettings(active: try Self.idp(), activeTested: nil, draft: nil, draftTested: nil, draftRevision: 0, enabled: true)
        try await store.seed([org: seed])
        _ = try await store.setEnabled(false, organization: org)
        try await store.seed([org: seed])        // a restart: the console's change stays
        #expect(try await store.loadSettings().settings[org]?.enabled == false)
        // What the file seeded was never tested here: the console does not enable it.
        #expect(try await store.setEnabled(true, organization: org) == .notTested)
        await finish()
    }

    @Test(arguments: kinds)
    func auditEventsComeBackNewestFirstFilteredAndPurged(kind: Kind) async throws {
        let (store, finish) = try await Self.open(kind)
        let org = Self.unique("org")
        func event(_ time: Int64, _ action: String, _ result: String) -> AuditEvent {
            AuditEvent(time: time, action: action, organization: org, actor: "alice", result: result, reason: result == "failure" ? "signature_invalid" : nil,
                       subject: "alice@example.test", ip: "192.0.2.1", requestID: "r\(time)")
        }
        for (time, action, result) in [(100, "sso.login", "success"), (200, "sso.login", "failure"), (300, "sso.enable", "success")] as [(Int64, String, String)] {
            try await store.record(event(time, action, result))
        }
        try await store.record(AuditEvent(time: 250, action: "sso.login", organization: Self.unique("other"), actor: nil, result: "success",
                                          reason: nil, subject: nil, ip: nil, requestID: nil))
        #expect(try await store.events(AuditQuery(organization: org, limit: 10)).map(\.time) == [300, 200, 100])
        #expect(try await store.events(AuditQuery(organization: org, limit: 2)).map(\.time) == [300, 200])
        #expect(try await store.events(AuditQuery(organization: org, limit: 10, action: "sso.login")).map(\.time) == [200, 100])
        #expect(try await store.events(AuditQuery(organization: org, limit: 10, result: "failure")) == [event(200, "sso.login", "failure")])
        #expect(try await store.events(AuditQuery(organization: org, limit: 10, since: 150, until: 250)).map(\.time) == [200])
        #expect(try await store.purgeAudit(before: 150) >= 1)
        #expect(try await store.events(AuditQuery(organization: org, limit: 10)).map(\.time) == [300, 200])
        await finish()
    }

    @Test(arguments: kinds)
    func anAdminTokenIsFoundByItsHashUntilItExpires(kind: Kind) async throws {
        let (store, finish) = try await Self.open(kind)
        let made = try AdminToken.make(organization: "acme", now: 1000, lifetime: 3600)
        #expect(made.text.hasPrefix("ssga_") && !made.text.contains(made.token.hash))
        try await store.storeAdminToken(made.token)
        #expect(try await store.adminToken(hash: try AdminToken.hash(made.text), now: 2000) == made.token)
        #expect(try await store.adminToken(hash: try AdminToken.hash(made.text), now: 4600) == nil)
        #expect(try await store.adminToken(hash: try AdminToken.hash(made.text + "x"), now: 2000) == nil)
        await finish()
    }

    @Test(arguments: kinds)
    func aOneTimeLinkOpensOnceEvenToRacingUses(kind: Kind) async throws {
        let (store, finish) = try await Self.open(kind)
        let made = try AdminToken.make(organization: "acme", now: 1000, lifetime: 900, prefix: "ssgl_")
        try await store.storeAdminLink(made.token)
        let hash = try AdminToken.hash(made.text)
        let uses = await withTaskGroup(of: AdminToken?.self) { group in
            for _ in 0..<8 { group.addTask { try? await store.consumeAdminLink(hash: hash, now: 1100) } }
            return await group.reduce(into: [AdminToken?]()) { $0.append($1) }
        }
        #expect(uses.compactMap { $0 } == [made.token], "exactly one use gets it")
        // An expired link never opens.
        let late = try AdminToken.make(organization: "acme", now: 1000, lifetime: 900, prefix: "ssgl_")
        try await store.storeAdminLink(late.token)
        #expect(try await store.consumeAdminLink(hash: try AdminToken.hash(late.text), now: 1900) == nil)
        await finish()
    }

    // MARK: - PostgreSQL over TLS

    /// The test server accepts TLS only (Tests/Replicas/postgres.sh); its CA is
    /// SSOGATE_TEST_POSTGRES_CA.
    /// A login's spend through a store for `query`; `reachable` waits for its schema first
    /// (a store that cannot connect answers `unavailable` within its 3 s bound).
    static func postgres(_ query: String, reachable: Bool = true) async throws -> StoreOutcome {
        let yaml = Harness.yaml(upstreamPort: 9, extra: "store: \"\(PostgresStoreTests.url)?\(query)\"")
        guard case .postgres(let settings) = try ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: ".").store else {
            Issue.record("not a PostgreSQL store")
            return .unavailable
        }
        let store = PostgresStore(settings, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let running = Task { await store.run() }
        defer { running.cancel() }
        for _ in 0..<(reachable ? 30 : 0) where (try? await store.migrate()) == nil {
            try await Task.sleep(for: .milliseconds(100))
        }
        return await store.spend(Self.spend([Self.unique("tls")]), now: Self.now)
    }

    static var postgresCA: String? { ProcessInfo.processInfo.environment["SSOGATE_TEST_POSTGRES_CA"] }

    @Test(.enabled(if: postgresCA != nil))
    func postgresVerifiesTheServerAgainstTheGivenCA() async throws {
        let ca = try #require(Self.postgresCA)
        #expect(try await Self.postgres("sslmode=verify-full&sslrootcert=\(ca)") == .spent)
        #expect(try await Self.postgres("sslmode=verify-ca&sslrootcert=\(ca)") == .spent)
        #expect(try await Self.postgres("sslmode=require") == .spent)
    }

    @Test(.enabled(if: postgresCA != nil))
    func postgresRefusesAServerItCannotVerifyAndPlainTextWhereTLSIsRequired() async throws {
        // Another CA than the one that signed the server's certificate.
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let other = try SelfSignedIdentity.generate(commonName: "another CA")
        try other.certificatePEM.write(toFile: folder.path + "/other.crt", atomically: true, encoding: .utf8)
        #expect(try await Self.postgres("sslmode=verify-full&sslrootcert=\(folder.path)/other.crt", reachable: false) == .unavailable)
        // The server refuses connections without TLS: `disable` never gets in.
        #expect(try await Self.postgres("sslmode=disable", reachable: false) == .unavailable)
    }

    // MARK: - SQLite

    @Test func whatWasStoredBeforeTheFileIsReopenedIsStillThere() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let id = Self.unique("kept")
        let first = try SQLiteStore(path: folder.path + "/state.db", logger: Logger(label: "test"))
        #expect(await first.spend(Self.spend([id]), now: Self.now) == .spent)
        // The settings and the audit log survive the restart too.
        let saved = try await first.saveDraft(try Self.idp(), organization: "acme")
        let event = AuditEvent(time: 100, action: "sso.settings.update", organization: "acme", actor: "alice", result: "success",
                               reason: nil, subject: nil, ip: "192.0.2.1", requestID: "r1")
        try await first.record(event)
        try first.close()
        let second = try SQLiteStore(path: folder.path + "/state.db", logger: Logger(label: "test"))
        #expect(await second.spend(Self.spend([id]), now: Self.now) == .alreadySpent(Self.spend([id])[0]))
        #expect(try await second.loadSettings().settings["acme"] == saved)
        #expect(try await second.events(AuditQuery(organization: "acme", limit: 5)) == [event])
        try second.close()
    }

    @Test func tokensAndLinksAreStoredOnlyAsHashes() async throws {
        // docs/CONTRACT.md: admin tokens are "stored hashed"; a copy of the file opens nothing.
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = try SQLiteStore(path: folder.path + "/state.db", logger: Logger(label: "test"))
        let token = try AdminToken.make(organization: "acme", now: 1000, lifetime: 3600)
        let link = try AdminToken.make(organization: "acme", now: 1000, lifetime: 900, prefix: "ssgl_")
        try await store.storeAdminToken(token.token)
        try await store.storeAdminLink(link.token)
        var bytes = Data()
        for suffix in ["", "-wal"] { bytes += (try? Data(contentsOf: URL(fileURLWithPath: folder.path + "/state.db" + suffix))) ?? Data() }
        for secret in [token.text, link.text, String(token.text.dropFirst(5)), String(link.text.dropFirst(5))] {
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "a credential's text is in the file")
        }
        #expect(bytes.range(of: Data(token.token.hash.utf8)) != nil, "its hash is")
        try store.close()
    }

    @Test func theFileIsMigratedAndReadableByItsOwnerOnly() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = try SQLiteStore(path: folder.path + "/state.db", logger: Logger(label: "test"))
        #expect(try store.appliedVersions() == ["1 spent ids", "2 settings, audit, admin tokens", "3 admin links", "4 sessions", "5 tokens"])
        let mode = try FileManager.default.attributesOfItem(atPath: folder.path + "/state.db")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        try store.close()
    }

    @Test func processesOpeningANewFileAtOnceTakeTurnsMigratingIt() async throws {
        // Replicas on one host, or `ssogate admin-link` beside a starting gateway: without the
        // lock file, two openers ran the same migration and the second's CREATE TABLE failed.
        for round in 0..<10 {
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            let path = folder.path + "/state.db"
            let opened = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await offThePool {
                            guard let store = try? SQLiteStore(path: path, logger: Logger(label: "test")) else { return false }
                            try? store.close()
                            return true
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(opened.allSatisfy { $0 }, "round \(round): \(opened)")
        }
    }

    @Test func aFileFromANewerVersionIsRefusedByName() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/state.db"
        try SQLiteStore(path: path, logger: Logger(label: "test")).close()
        // Another program writes the newer version (Python's sqlite3: importing GRDB here
        // would bring its `??` and other operators into every file of this test target).
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                            + "c.execute(\"INSERT INTO grdb_migrations (identifier) VALUES ('2 from the future')\"); c.commit()", path]
        try python.run()
        python.waitUntilExit()
        #expect(python.terminationStatus == 0)
        #expect {
            try SQLiteStore(path: path, logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("newer ssogate")
        }
    }

    @Test func aMissingFolderIsNamed() {
        #expect {
            try SQLiteStore(path: "/nonexistent-ssogate-folder/state.db", logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains("/nonexistent-ssogate-folder") && "\(error)".contains("does not exist")
        }
    }

    @Test func purgeDropsOnlyExpiredIDs() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = try SQLiteStore(path: folder.path + "/state.db", logger: Logger(label: "test"))
        let short = Self.unique("short"), long = Self.unique("long")
        #expect(await store.spend(Self.spend([short], until: Self.now.addingTimeInterval(10)), now: Self.now) == .spent)
        #expect(await store.spend(Self.spend([long], until: Self.now.addingTimeInterval(1000)), now: Self.now) == .spent)
        #expect(try await store.purge(now: Self.now.addingTimeInterval(11)) == 1)
        #expect(await store.spend(Self.spend([long]), now: Self.now.addingTimeInterval(11)) == .alreadySpent(Self.spend([long])[0]))
        try store.close()
    }
}

/// A folder under the system's temporary directory, removed by `remove()`.
struct TemporaryFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("ssogate-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
