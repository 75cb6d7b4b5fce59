#if canImport(Glibc)
import Glibc
#endif
import Config
import Foundation
// internal: no module that imports StateStore sees GRDB (its string-literal and operator
// overloads would change what plain Swift means there).
internal import GRDB
import Logging
import SAML

/// The embedded store, the default (docs/CONTRACT.md "State store"): one SQLite file, so that a
/// restart forgets nothing (an assertion spent before it stays spent after it).
///
/// GRDB over the system SQLite, in WAL mode: chosen over sqlite-nio by measurement
/// (benchmarks/store-choice: a login's two IDs spent in one transaction, 1.1-1.7x the rate
/// with one caller and 1.6-3x with eight, because a whole transaction is one hop to GRDB's
/// writer queue where sqlite-nio hops to a thread pool per statement). GRDB also brings
/// statement caching and a migrator that records which schema versions were applied.
///
/// Every commit is synchronous (`PRAGMA synchronous = FULL`): a login is accepted only
/// after its IDs are on disk, so not even a power cut un-spends them. No event loop waits
/// for SQLite: GRDB runs the statements on its own writer queue.
package final class SQLiteStore: GatewayStore {
    static let timeout: Duration = .seconds(3)
    static let purgeEvery: Duration = .seconds(60)

    package let path: String
    private let logger: Logger
    let pool: DatabasePool

    /// Opens (creating it if needed, readable by its owner only) and migrates the file.
    /// Throws with a message naming the path when it cannot.
    package init(path: String, logger: Logger) throws(StoreError) {
        self.path = path
        self.logger = logger
        let folder = (path as NSString).deletingLastPathComponent
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.isEmpty ? "." : folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw StoreError("sqlite:\(path): the folder \(folder) does not exist")
        }
        if !FileManager.default.fileExists(atPath: path) {
            // SQLite gives its -wal and -shm files the main file's permissions.
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)        // `ssogate` commands on the same file
        configuration.label = "ssogate-store"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        // Processes that open one file at once (replicas on one host, `ssogate admin-link`
        // beside a starting gateway) would each run a migration GRDB saw as missing: the
        // second's `CREATE TABLE` then fails. A lock file makes them take turns.
        let lock = open(path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        defer { if lock >= 0 { Glibc.close(lock) } }
        if lock >= 0 { _ = flock(lock, LOCK_EX) }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // A file a newer ssogate wrote is refused before anything is changed in it.
            let unknown = try pool.read { try Self.migrator.appliedIdentifiers($0) }.subtracting(Self.migrator.migrations)
            if !unknown.isEmpty {
                throw StoreError("sqlite:\(path): written by a newer ssogate (schema \(unknown.sorted().joined(separator: ", "))); "
                                 + "this one knows up to \(Self.schemaVersion): run the newer ssogate, or restore the file from before the upgrade")
            }
            try Self.migrator.migrate(pool)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("sqlite:\(path): \(error)")
        }
    }

    /// The schema versions, in order. A version once released is never edited: changes
    /// are new versions.
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1 spent ids") { db in
            // Spent assertion and AuthnRequest IDs (rules 8 and 9) until their expiry.
            try db.execute(sql: """
                CREATE TABLE spent_ids (id TEXT PRIMARY KEY NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
                CREATE INDEX spent_ids_expires ON spent_ids (expires);
                """)
        }
        migrator.registerMigration("2 settings, audit, admin tokens") { db in
            // One JSON document per organization (OrganizationSettings); a version every
            // change moves, which other processes poll.
            try db.execute(sql: """
                CREATE TABLE org_settings (organization TEXT PRIMARY KEY NOT NULL, settings TEXT NOT NULL) WITHOUT ROWID;
                CREATE TABLE settings_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
                INSERT INTO settings_version (id, version) VALUES (1, 0);
                CREATE TABLE audit_events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, action TEXT NOT NULL,
                    organization TEXT NOT NULL, actor TEXT, result TEXT NOT NULL, reason TEXT, subject TEXT,
                    ip TEXT, request_id TEXT);
                CREATE INDEX audit_events_organization_time ON audit_events (organization, time);
                CREATE TABLE admin_tokens (
                    hash TEXT PRIMARY KEY NOT NULL, id TEXT NOT NULL, organization TEXT NOT NULL,
                    created INTEGER NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("3 admin links") { db in
            try db.execute(sql: """
                CREATE TABLE admin_links (
                    hash TEXT PRIMARY KEY NOT NULL, id TEXT NOT NULL, organization TEXT NOT NULL,
                    created INTEGER NOT NULL, expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("4 sessions") { db in
            // Sessions begun by logins; the endings in order (`seq` is what replicas poll).
            try db.execute(sql: """
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY NOT NULL, organization TEXT NOT NULL, subject TEXT NOT NULL, session_index TEXT,
                    created INTEGER NOT NULL, expires INTEGER NOT NULL, ended INTEGER) WITHOUT ROWID;
                CREATE INDEX sessions_subject ON sessions (organization, subject);
                CREATE INDEX sessions_expires ON sessions (expires);
                CREATE TABLE ended_sessions (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, expires INTEGER NOT NULL);
                CREATE INDEX ended_sessions_expires ON ended_sessions (expires);
                """)
        }
        migrator.registerMigration("5 tokens") { db in
            // Members' access tokens: one JSON document each (AccessToken), found by hash;
            // `changed` is the token version of its last change, which gateways poll.
            try db.execute(sql: """
                CREATE TABLE tokens (
                    id TEXT PRIMARY KEY NOT NULL, hash TEXT NOT NULL UNIQUE, organization TEXT NOT NULL, subject TEXT NOT NULL,
                    expires INTEGER NOT NULL, changed INTEGER NOT NULL, token TEXT NOT NULL) WITHOUT ROWID;
                CREATE INDEX tokens_changed ON tokens (changed);
                CREATE INDEX tokens_member ON tokens (organization, subject);
                CREATE TABLE token_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
                INSERT INTO token_version (id, version) VALUES (1, 0);
                """)
        }
        return migrator
    }()

    static let schemaVersion = "5 tokens"

    /// Every schema version this build knows, oldest first.
    package static var schemaVersions: [String] { migrator.migrations }

    /// Makes (or brings) the file at `path` to the schema version `identifier` and no
    /// further: what an older ssogate left, for the upgrade tests.
    package static func migrate(path: String, upTo identifier: String) throws {
        let pool = try DatabasePool(path: path)
        try migrator.migrate(pool, upTo: identifier)
        try pool.close()
    }

    /// The schema versions applied to the file, oldest first.
    package func appliedVersions() throws -> [String] {
        try pool.read { try Self.migrator.appliedMigrations($0) }
    }

    package func spendNow(_ spends: [ReplaySpend], now: Date) -> StoreOutcome? { nil }

    /// All or none: when one of the IDs is still live nothing is recorded.
    package func spend(_ spends: [ReplaySpend], now: Date) async -> StoreOutcome {
        let nowSeconds = Int64(now.timeIntervalSince1970.rounded(.down))
        do {
            return try await withTimeout(Self.timeout) {
                try await self.pool.write { db -> StoreOutcome in
                    for spend in spends {
                        let live = try Int64.fetchOne(db, sql: "SELECT expires FROM spent_ids WHERE id = ?", arguments: [spend.id])
                        if let live, live > nowSeconds { return .alreadySpent(spend) }
                    }
                    for spend in spends {
                        // Rounded up: an ID stays spent at least as long as it could be accepted.
                        let until = Int64(spend.until.timeIntervalSince1970.rounded(.up))
                        try db.execute(sql: "INSERT INTO spent_ids (id, expires) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET expires = excluded.expires",
                                       arguments: [spend.id, until])
                    }
                    return .spent
                }
            }
        } catch {
            logger.error("state store did not record a login", metadata: ["store": "sqlite", "error": "\(error)"])
            return .unavailable
        }
    }

    /// Drops IDs whose time is over; returns how many.
    @discardableResult
    package func purge(now: Date) async throws -> Int {
        let nowSeconds = Int64(now.timeIntervalSince1970.rounded(.down))
        return try await pool.write { db in
            try db.execute(sql: "DELETE FROM spent_ids WHERE expires <= ?", arguments: [nowSeconds])
            return db.changesCount
        }
    }

    /// Purges expired rows every minute until cancelled.
    package func run(clock: @escaping @Sendable () -> Date) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.purgeEvery)
            if Task.isCancelled { break }
            do {
                let purged = try await purge(now: clock())
                if purged > 0 { logger.debug("state store purged expired ids", metadata: ["store": "sqlite", "rows": "\(purged)"]) }
            } catch {
                logger.warning("state store purge failed", metadata: ["store": "sqlite", "error": "\(error)"])
            }
        }
    }

    // MARK: - Settings

    package func loadSettings() async throws -> (version: Int64, settings: [String: OrganizationSettings]) {
        try await pool.read { db in
            let version = try Int64.fetchOne(db, sql: "SELECT version FROM settings_version WHERE id = 1") ?? 0
            var settings: [String: OrganizationSettings] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT organization, settings FROM org_settings") {
                settings[row["organization"]] = try Self.decode(row["settings"])
            }
            return (version, settings)
        }
    }

    package func settingsVersion() async throws -> Int64 {
        try await pool.read { try Int64.fetchOne($0, sql: "SELECT version FROM settings_version WHERE id = 1") ?? 0 }
    }

    package func seed(_ seeds: [String: OrganizationSettings]) async throws {
        try await pool.write { db in
            for (organization, seed) in seeds {
                try db.execute(sql: "INSERT INTO org_settings (organization, settings) VALUES (?, ?) ON CONFLICT (organization) DO NOTHING",
                               arguments: [organization, try Self.encode(seed)])
                if db.changesCount > 0 { try Self.bumpVersion(db) }
            }
        }
    }

    package func saveDraft(_ draft: IdPSettings, organization: String) async throws -> OrganizationSettings {
        try await pool.write { db in
            var settings = try Self.settings(db, organization) ?? .empty
            settings.draft = draft
            settings.draftTested = nil
            settings.draftRevision += 1
            try Self.store(db, organization, settings)
            return settings
        }
    }

    package func recordTest(organization: String, revision: Int64, result: TestResult) async throws -> OrganizationSettings? {
        try await pool.write { db in
            guard let next = try Self.settings(db, organization)?.recordingTest(revision: revision, result: result) else { return nil }
            try Self.store(db, organization, next)
            return next
        }
    }

    package func setEnabled(_ enabled: Bool, organization: String) async throws -> EnableOutcome {
        try await pool.write { db in
            guard let next = (try Self.settings(db, organization) ?? .empty).enabling(enabled) else { return .notTested }
            try Self.store(db, organization, next)
            return .done(next)
        }
    }

    package func setRoleMapping(_ mapping: StoredRoleMapping?, organization: String) async throws -> OrganizationSettings {
        try await changing(organization) { $0.roleMapping = mapping }
    }

    package func setAccessPolicy(_ policy: AccessPolicy?, organization: String) async throws -> OrganizationSettings {
        try await changing(organization) { $0.access = policy }
    }

    /// One organization's settings as `change` leaves them, stored with the version moved.
    private func changing(_ organization: String,
                          _ change: @escaping @Sendable (inout OrganizationSettings) -> Void) async throws -> OrganizationSettings {
        try await pool.write { db in
            var settings = try Self.settings(db, organization) ?? .empty
            change(&settings)
            try Self.store(db, organization, settings)
            return settings
        }
    }

    private static func settings(_ db: Database, _ organization: String) throws -> OrganizationSettings? {
        try String.fetchOne(db, sql: "SELECT settings FROM org_settings WHERE organization = ?", arguments: [organization]).map(decode)
    }

    private static func store(_ db: Database, _ organization: String, _ settings: OrganizationSettings) throws {
        try db.execute(sql: "INSERT INTO org_settings (organization, settings) VALUES (?, ?) ON CONFLICT (organization) DO UPDATE SET settings = excluded.settings",
                       arguments: [organization, try encode(settings)])
        try bumpVersion(db)
    }

    private static func bumpVersion(_ db: Database) throws {
        try db.execute(sql: "UPDATE settings_version SET version = version + 1 WHERE id = 1")
    }

    /// A stored JSON document (settings, tokens): sorted keys, so equal values store equal text.
    static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode(_ text: String) throws -> OrganizationSettings { try decode(OrganizationSettings.self, text) }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    // MARK: - Audit

    package func record(_ event: AuditEvent) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                INSERT INTO audit_events (time, action, organization, actor, result, reason, subject, ip, request_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [event.time, event.action, event.organization, event.actor, event.result, event.reason,
                                 event.subject, event.ip, event.requestID])
        }
    }

    package func events(_ query: AuditQuery) async throws -> [AuditEvent] {
        try await pool.read { db in
            var sql = "SELECT * FROM audit_events WHERE organization = ?"
            var arguments: StatementArguments = [query.organization]
            if let action = query.action { sql += " AND action = ?"; arguments += [action] }
            if let result = query.result { sql += " AND result = ?"; arguments += [result] }
            if let since = query.since { sql += " AND time >= ?"; arguments += [since] }
            if let until = query.until { sql += " AND time <= ?"; arguments += [until] }
            sql += " ORDER BY time DESC, id DESC LIMIT ?"
            arguments += [query.limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                AuditEvent(time: row["time"], action: row["action"], organization: row["organization"], actor: row["actor"],
                           result: row["result"], reason: row["reason"], subject: row["subject"], ip: row["ip"],
                           requestID: row["request_id"])
            }
        }
    }

    package func purgeAudit(before: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM audit_events WHERE time < ?", arguments: [before])
            return db.changesCount
        }
    }

    // MARK: - Admin tokens and links

    package func storeAdminToken(_ token: AdminToken) async throws {
        try await storeCredential(token, table: "admin_tokens")
    }

    package func adminToken(hash: String, now: Int64) async throws -> AdminToken? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM admin_tokens WHERE hash = ? AND expires > ?", arguments: [hash, now]).map(Self.credential)
        }
    }

    package func storeAdminLink(_ link: AdminToken) async throws {
        try await storeCredential(link, table: "admin_links")
    }

    package func consumeAdminLink(hash: String, now: Int64) async throws -> AdminToken? {
        try await pool.write { db in
            try Row.fetchOne(db, sql: "UPDATE admin_links SET used = 1 WHERE hash = ? AND used = 0 AND expires > ? RETURNING *",
                             arguments: [hash, now]).map(Self.credential)
        }
    }

    /// An admin token or a one-time link, into its table (`admin_tokens`, `admin_links`).
    private func storeCredential(_ credential: AdminToken, table: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "INSERT INTO \(table) (hash, id, organization, created, expires) VALUES (?, ?, ?, ?, ?)",
                           arguments: [credential.hash, credential.id, credential.organization, credential.created, credential.expires])
        }
    }

    private static func credential(_ row: Row) -> AdminToken {
        AdminToken(id: row["id"], organization: row["organization"], hash: row["hash"], created: row["created"], expires: row["expires"])
    }

    package func close() throws {
        try pool.close()
    }
}
