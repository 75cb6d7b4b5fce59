import Config
import Foundation
import Logging
import NIOPosix
import SAML
import Sessions
@testable import StateStore
import Testing

/// Upgrades (README "The state store"): a store an earlier ssogate left, at each schema
/// version it may have, is brought forward on start with what it held kept and every
/// feature working after; a store a newer ssogate wrote is refused by name, untouched.
/// SQLite always; PostgreSQL when `make test` started one (its own database,
/// `ssogate_upgrades`, emptied before each version).
@Suite("State store upgrades", .serialized)
struct StoreUpgradeTests {
    static let now = StateStoreTests.now

    /// What every version must do once brought forward: spend, sessions, tokens, settings.
    static func worksFully(_ store: GatewayStore, spentBefore: String?) async throws {
        if let spentBefore {
            #expect(await store.spend(StateStoreTests.spend([spentBefore]), now: now) == .alreadySpent(StateStoreTests.spend([spentBefore])[0]),
                    "an ID spent before the upgrade is still spent")
        }
        #expect(await store.spend(StateStoreTests.spend([StateStoreTests.unique("after")]), now: now) == .spent)
        let org = StateStoreTests.unique("org")
        let record = SessionRecord(id: StateStoreTests.unique("s"), organization: org, subject: "alice", sessionIndex: nil,
                                   created: Int64(now.timeIntervalSince1970), expires: Int64(now.timeIntervalSince1970) + 3600)
        try await store.recordSession(record)
        #expect(try await store.liveSessions(organization: org, subject: "alice", now: Int64(now.timeIntervalSince1970), limit: 10).map(\.id) == [record.id])
        let token = TokenStoreTests.token(org, "alice")
        try await store.createToken(token)
        #expect(try await store.tokens(changedAfter: 0).tokens.contains { $0.id == token.id })
        _ = try await store.loadSettings()
    }

    // MARK: - SQLite

    /// Every earlier version: the file as that version's ssogate made it, with an ID it spent.
    static var earlierSQLiteVersions: [String] { Array(SQLiteStore.schemaVersions.dropLast()) }

    @Test(arguments: earlierSQLiteVersions)
    func aSQLiteFileOfAnEarlierVersionIsBroughtForward(version: String) async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/state.db"
        try SQLiteStore.migrate(path: path, upTo: version)
        // The row as every version since the first writes it (seconds since 1970).
        let spent = StateStoreTests.unique("before")
        try Self.sqlite(path, "INSERT INTO spent_ids (id, expires) VALUES ('\(spent)', \(Int64(Self.now.timeIntervalSince1970) + 300))")
        let store = try SQLiteStore(path: path, logger: Logger(label: "test"))
        defer { try? store.close() }
        #expect(try store.appliedVersions() == SQLiteStore.schemaVersions)
        try await Self.worksFully(store, spentBefore: spent)
    }

    @Test func aSQLiteFileOfANewerVersionIsRefusedUntouched() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/state.db"
        try SQLiteStore.migrate(path: path, upTo: SQLiteStore.schemaVersions[1])
        try Self.sqlite(path, "INSERT INTO grdb_migrations (identifier) VALUES ('9 from the future')")
        #expect {
            try SQLiteStore(path: path, logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("newer ssogate") && "\(error)".contains("9 from the future")
                && "\(error)".contains(SQLiteStore.schemaVersion)
        }
        // Refused before any migration ran: the versions it lacked are still missing.
        let tables = try Self.sqlite(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").split(separator: "\n")
        #expect(tables.contains("admin_tokens") && !tables.contains("sessions") && !tables.contains("tokens"), "\(tables)")
    }

    /// Runs `sql` on the file with Python's sqlite3 (importing GRDB here would bring its
    /// operators into every file of this target); its rows, one per line.
    @discardableResult
    static func sqlite(_ path: String, _ sql: String) throws -> String {
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                            + "rows = c.execute(sys.argv[2]).fetchall(); c.commit(); print('\\n'.join(str(r[0]) for r in rows))", path, sql]
        let out = Pipe()
        python.standardOutput = out
        try python.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        python.waitUntilExit()
        #expect(python.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: - PostgreSQL

    /// The test server's database for upgrades (Tests/Replicas/postgres.sh makes it).
    static var upgradesURL: String? {
        guard PostgresStoreTests.enabled, let slash = PostgresStoreTests.url.range(of: "/", options: .backwards) else { return nil }
        return PostgresStoreTests.url[..<slash.lowerBound] + "/ssogate_upgrades"
    }

    /// Runs `sql` in the upgrades database with Debian's psql; its output, unaligned.
    @discardableResult
    static func psql(_ sql: String) throws -> String {
        let url = try #require(upgradesURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", url + "?sslmode=require", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "psql: \(sql)")
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A store on the upgrades database, emptied of whatever an earlier case left.
    static func postgres() async throws -> (PostgresStore, Task<Void, Never>) {
        let url = try #require(upgradesURL)
        try psql("DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'ssogate%' "
                 + "LOOP EXECUTE 'DROP TABLE ' || quote_ident(t) || ' CASCADE'; END LOOP; END $$")
        let yaml = Harness.yaml(upstreamPort: 9, extra: "store: \"\(url)\"")
        guard case .postgres(let settings) = try ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: ".").store else {
            throw StoreError("not a PostgreSQL store")
        }
        let store = PostgresStore(settings, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"), timeout: .seconds(15))
        // The pool alone: `run()` would migrate to the latest version by itself.
        return (store, Task { await store.runPool() })
    }

    /// `store.migrate(upTo:)`, retried while the pool connects.
    static func migrate(_ store: PostgresStore, upTo version: Int = PostgresStore.schemaVersion) async throws {
        for _ in 0..<50 {
            do { return try await store.migrate(upTo: version) } catch let error as StoreError where "\(error)".contains("newer") { throw error } catch {}
            try await Task.sleep(for: .milliseconds(100))
        }
        try await store.migrate(upTo: version)
    }

    @Test(.enabled(if: upgradesURL != nil), arguments: 0..<PostgresStore.schemaVersion)
    func aPostgreSQLDatabaseOfAnEarlierVersionIsBroughtForward(version: Int) async throws {
        let (store, running) = try await Self.postgres()
        defer { running.cancel() }
        try await Self.migrate(store, upTo: version)
        var spent: String?
        if version >= 1 {
            spent = StateStoreTests.unique("before")
            #expect(await store.spend(StateStoreTests.spend([spent!]), now: Self.now) == .spent)
        }
        try await Self.migrate(store)
        #expect(try Self.psql("SELECT version FROM ssogate_schema") == "\(PostgresStore.schemaVersion)")
        try await Self.worksFully(store, spentBefore: spent)
    }

    @Test(.enabled(if: upgradesURL != nil))
    func aPostgreSQLDatabaseOfANewerVersionIsRefused() async throws {
        let (store, running) = try await Self.postgres()
        defer { running.cancel() }
        try await Self.migrate(store, upTo: 2)
        try Self.psql("UPDATE ssogate_schema SET version = \(PostgresStore.schemaVersion + 4)")
        await #expect {
            try await store.migrate()
        } throws: { error in
            "\(error)".contains("newer ssogate") && "\(error)".contains("version \(PostgresStore.schemaVersion + 4)")
        }
        #expect(try Self.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'ssogate_tokens'") == "0", "nothing of the later versions was made")
    }
}
