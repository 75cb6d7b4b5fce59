import Config
import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import SAML

/// The replay store every replica shares: spent assertion and AuthnRequest IDs in one
/// PostgreSQL table, through postgres-nio's connection pool.
///
/// A login's IDs are spent in one statement (`INSERT … ON CONFLICT … RETURNING`), and the
/// login is accepted only when every one of its IDs came back: PostgreSQL's unique index
/// makes two replicas racing on the same response wait for each other on the same row, and
/// exactly one of them sees it inserted. An ID whose time is over counts as free again. A
/// store that does not answer within `timeout` is `unavailable`: the login fails closed
/// (503 `state_store_unavailable`); sessions do not need the store and keep working, and
/// the pool reconnects by itself.
package final class PostgresStore: GatewayStore {
    static let timeout: Duration = .seconds(3)
    /// How long a call may take before it counts as no answer (`timeout`; tests that load
    /// two cores with hundreds of other tests give it more).
    let timeout: Duration
    static let purgeEvery: Duration = .seconds(60)
    /// The schema this code expects; a migration brings an older database up to it.
    static let schemaVersion = 5

    let client: PostgresClient
    let logger: Logger

    package init(_ settings: GatewayConfiguration.Postgres, group: EventLoopGroup, logger: Logger, timeout: Duration = PostgresStore.timeout) {
        self.timeout = timeout
        var configuration = PostgresClient.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                         password: settings.password, database: settings.database,
                                                         tls: Self.tls(settings.tls))
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.maximumConnections = 10
        client = PostgresClient(configuration: configuration, eventLoopGroup: group, backgroundLogger: logger)
        self.logger = logger
    }

    /// libpq's modes on postgres-nio: `prefer` falls back to plain text when the server has
    /// no TLS; `require` encrypts without checking who answers; the `verify-` modes check
    /// the chain against the given roots, and `verify-full` the host name too.
    static func tls(_ mode: GatewayConfiguration.PostgresTLS) -> PostgresClient.Configuration.TLS {
        var tls = TLSConfiguration.makeClientConfiguration()
        func trusting(_ roots: GatewayConfiguration.TrustRoots) {
            switch roots {
            case .system: tls.trustRoots = .default
            case .file(let path): tls.trustRoots = .file(path)
            }
        }
        switch mode {
        case .disable:
            return .disable
        case .prefer:
            tls.certificateVerification = .none
            return .prefer(tls)
        case .require:
            tls.certificateVerification = .none
            return .require(tls)
        case .verifyCA(let roots):
            trusting(roots)
            tls.certificateVerification = .noHostnameVerification
            return .require(tls)
        case .verifyFull(let roots):
            trusting(roots)
            tls.certificateVerification = .fullVerification
            return .require(tls)
        }
    }

    /// Runs the connection pool alone, until cancelled: no migration, no purge (the upgrade
    /// tests set each schema version themselves).
    package func runPool() async {
        await client.run()
    }

    /// Runs the pool, migrates the schema (retrying while the database is not up yet) and
    /// purges expired rows, until cancelled. Sessions are purged at `clock`, the time they
    /// were judged at (the gateway's clock).
    package func run(clock: @escaping @Sendable () -> Date = { Date() }) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.client.run() }
            group.addTask {
                var migrated = false
                while !Task.isCancelled {
                    if !migrated {
                        do {
                            try await self.migrate()
                            migrated = true
                            self.logger.info("replay store ready", metadata: ["store": "postgres", "schema": "\(Self.schemaVersion)"])
                        } catch {
                            self.logger.error("replay store unreachable; logins fail closed until it answers", metadata: ["error": "\(String(reflecting: error))"])
                        }
                    } else {
                        do {
                            try await self.client.query("DELETE FROM ssogate_spent_ids WHERE expires < now()")
                            _ = try await self.purgeSessions(now: Int64(clock().timeIntervalSince1970))
                        } catch {
                            self.logger.warning("replay store purge failed", metadata: ["error": "\(String(reflecting: error))"])
                        }
                    }
                    try? await Task.sleep(for: migrated ? Self.purgeEvery : .seconds(2))
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Brings the schema to `schemaVersion`, one version at a time, serialized by an
    /// advisory lock so replicas that start together do not race on `CREATE TABLE`. A
    /// database a newer ssogate wrote is refused, not misread.
    /// - Parameter target: the version to stop at (the upgrade tests make each earlier
    ///   version with it, then let `migrate()` bring it up).
    package func migrate(upTo target: Int = schemaVersion) async throws {
        try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7270717)", logger: self.logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS ssogate_schema (version integer NOT NULL)", logger: self.logger)
            var current = 0
            for try await version in try await connection.query("SELECT version FROM ssogate_schema", logger: self.logger).decode(Int.self) {
                current = max(current, version)
            }
            guard current <= Self.schemaVersion else {
                throw StoreError("postgres: schema version \(current) was written by a newer ssogate; this one knows up to \(Self.schemaVersion): "
                                 + "run the newer ssogate, or restore the database from before the upgrade")
            }
            if current < 1, target >= 1 {
                // Spent assertion and AuthnRequest IDs (rules 8 and 9) until their expiry.
                try await connection.query("CREATE TABLE IF NOT EXISTS ssogate_spent_ids (id text PRIMARY KEY, expires timestamptz NOT NULL)", logger: self.logger)
                try await connection.query("CREATE INDEX IF NOT EXISTS ssogate_spent_ids_expires ON ssogate_spent_ids (expires)", logger: self.logger)
            }
            if current < 2, target >= 2 {
                // Organization settings (one JSON document each), the version replicas poll,
                // the audit log and admin tokens (hashes).
                try await connection.query("CREATE TABLE ssogate_org_settings (organization text PRIMARY KEY, settings text NOT NULL)", logger: self.logger)
                try await connection.query("CREATE TABLE ssogate_settings_version (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL)", logger: self.logger)
                try await connection.query("INSERT INTO ssogate_settings_version (id, version) VALUES (1, 0)", logger: self.logger)
                try await connection.query("""
                    CREATE TABLE ssogate_audit_events (
                        id bigserial PRIMARY KEY, time bigint NOT NULL, action text NOT NULL, organization text NOT NULL,
                        actor text, result text NOT NULL, reason text, subject text, ip text, request_id text)
                    """, logger: self.logger)
                try await connection.query("CREATE INDEX ssogate_audit_events_organization_time ON ssogate_audit_events (organization, time)", logger: self.logger)
                try await connection.query("""
                    CREATE TABLE ssogate_admin_tokens (
                        hash text PRIMARY KEY, id text NOT NULL, organization text NOT NULL, created bigint NOT NULL, expires bigint NOT NULL)
                    """, logger: self.logger)
            }
            if current < 3, target >= 3 {
                try await connection.query("""
                    CREATE TABLE ssogate_admin_links (
                        hash text PRIMARY KEY, id text NOT NULL, organization text NOT NULL, created bigint NOT NULL,
                        expires bigint NOT NULL, used boolean NOT NULL DEFAULT false)
                    """, logger: self.logger)
            }
            if current < 4, target >= 4 {
                // Sessions begun by logins; the endings in order (`seq` is what replicas poll).
                try await connection.query("""
                    CREATE TABLE ssogate_sessions (
                        id text PRIMARY KEY, organization text NOT NULL, subject text NOT NULL, session_index text,
                        created bigint NOT NULL, expires bigint NOT NULL, ended bigint)
                    """, logger: self.logger)
                try await connection.query("CREATE INDEX ssogate_sessions_subject ON ssogate_sessions (organization, subject)", logger: self.logger)
                try await connection.query("CREATE INDEX ssogate_sessions_expires ON ssogate_sessions (expires)", logger: self.logger)
                try await connection.query("""
                    CREATE TABLE ssogate_ended_sessions (seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, expires bigint NOT NULL)
                    """, logger: self.logger)
                try await connection.query("CREATE INDEX ssogate_ended_sessions_expires ON ssogate_ended_sessions (expires)", logger: self.logger)
            }
            if current < 5, target >= 5 {
                // Members' access tokens (AccessToken as JSON), found by hash; `changed` is the
                // token version of the last change (one row lock orders them), which replicas poll.
                try await connection.query("""
                    CREATE TABLE ssogate_tokens (
                        id text PRIMARY KEY, hash text NOT NULL UNIQUE, organization text NOT NULL, subject text NOT NULL,
                        expires bigint NOT NULL, changed bigint NOT NULL, token text NOT NULL)
                    """, logger: self.logger)
                try await connection.query("CREATE INDEX ssogate_tokens_changed ON ssogate_tokens (changed)", logger: self.logger)
                try await connection.query("CREATE INDEX ssogate_tokens_member ON ssogate_tokens (organization, subject)", logger: self.logger)
                try await connection.query("CREATE TABLE ssogate_token_version (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL)",
                                           logger: self.logger)
                try await connection.query("INSERT INTO ssogate_token_version (id, version) VALUES (1, 0)", logger: self.logger)
            }
            guard target > current else { return }
            try await connection.query("DELETE FROM ssogate_schema", logger: self.logger)
            try await connection.query("INSERT INTO ssogate_schema (version) VALUES (\(target))", logger: self.logger)
        }
    }

    /// `body` in one transaction on one pooled connection: committed when it returns,
    /// rolled back when it throws.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await connection.query("BEGIN", logger: self.logger)
            do {
                let value = try await body(connection)
                try await connection.query("COMMIT", logger: self.logger)
                return value
            } catch {
                try? await connection.query("ROLLBACK", logger: self.logger)
                throw error
            }
        }
    }

    package func spendNow(_ spends: [ReplaySpend], now: Date) -> StoreOutcome? { nil }

    package func spend(_ spends: [ReplaySpend], now: Date) async -> StoreOutcome {
        // One order for every caller: racing inserts then meet on the same first row.
        let sorted = spends.sorted { $0.id < $1.id }
        let ids = sorted.map(\.id)
        let expiries = sorted.map(\.until)
        /// Thrown inside the transaction to roll it back: these IDs were still live.
        struct Live: Error { let inserted: Set<String> }
        do {
            // All or none: when an ID comes back live, the transaction (and whatever it
            // inserted) is rolled back.
            try await withTimeout(self.timeout) { () async throws -> Void in
                try await self.transaction { connection -> Void in
                    let rows = try await connection.query("""
                        INSERT INTO ssogate_spent_ids (id, expires)
                        SELECT * FROM unnest(\(ids)::text[], \(expiries)::timestamptz[]) ORDER BY 1
                        ON CONFLICT (id) DO UPDATE SET expires = EXCLUDED.expires WHERE ssogate_spent_ids.expires <= \(now)
                        RETURNING id
                        """, logger: self.logger)
                    var got: Set<String> = []
                    for try await id in rows.decode(String.self) { got.insert(id) }
                    if got.count != Set(ids).count { throw Live(inserted: got) }
                }
            }
            return .spent
        } catch let live as Live {
            return spends.first { !live.inserted.contains($0.id) }.map(StoreOutcome.alreadySpent) ?? .spent
        } catch {
            logger.error("replay store did not record a login", metadata: ["error": "\(String(reflecting: error))"])
            return .unavailable
        }
    }

    // MARK: - Settings

    package func loadSettings() async throws -> (version: Int64, settings: [String: OrganizationSettings]) {
        try await withTimeout(self.timeout) {
            try await self.transaction { connection in
                var version: Int64 = 0
                for try await v in try await connection.query("SELECT version FROM ssogate_settings_version WHERE id = 1", logger: self.logger).decode(Int64.self) {
                    version = v
                }
                var settings: [String: OrganizationSettings] = [:]
                let rows = try await connection.query("SELECT organization, settings FROM ssogate_org_settings", logger: self.logger)
                for try await (organization, text) in rows.decode((String, String).self) {
                    settings[organization] = try SQLiteStore.decode(text)
                }
                return (version, settings)
            }
        }
    }

    package func settingsVersion() async throws -> Int64 {
        try await withTimeout(self.timeout) {
            var version: Int64 = 0
            for try await v in try await self.client.query("SELECT version FROM ssogate_settings_version WHERE id = 1", logger: self.logger).decode(Int64.self) {
                version = v
            }
            return version
        }
    }

    package func seed(_ seeds: [String: OrganizationSettings]) async throws {
        let encoded = try seeds.mapValues(SQLiteStore.encode)
        try await withTimeout(self.timeout) { () async throws -> Void in
            try await self.transaction { connection -> Void in
                for (organization, text) in encoded {
                    let rows = try await connection.query("""
                        INSERT INTO ssogate_org_settings (organization, settings) VALUES (\(organization), \(text))
                        ON CONFLICT (organization) DO NOTHING RETURNING organization
                        """, logger: self.logger)
                    var inserted = false
                    for try await _ in rows.decode(String.self) { inserted = true }
                    if inserted { try await self.bumpVersion(connection) }
                }
            }
        }
    }

    package func saveDraft(_ draft: IdPSettings, organization: String) async throws -> OrganizationSettings {
        try await modifying(organization) { settings in
            var settings = settings ?? .empty
            settings.draft = draft
            settings.draftTested = nil
            settings.draftRevision += 1
            return settings
        }!
    }

    package func recordTest(organization: String, revision: Int64, result: TestResult) async throws -> OrganizationSettings? {
        try await modifying(organization) { $0?.recordingTest(revision: revision, result: result) }
    }

    package func setEnabled(_ enabled: Bool, organization: String) async throws -> EnableOutcome {
        let next = try await modifying(organization) { ($0 ?? .empty).enabling(enabled) }
        return next.map(EnableOutcome.done) ?? .notTested
    }

    package func setRoleMapping(_ mapping: StoredRoleMapping?, organization: String) async throws -> OrganizationSettings {
        try await modifying(organization) { settings in
            var changed = settings ?? .empty
            changed.roleMapping = mapping
            return changed
        }!
    }

    package func setAccessPolicy(_ policy: AccessPolicy?, organization: String) async throws -> OrganizationSettings {
        try await modifying(organization) { settings in
            var changed = settings ?? .empty
            changed.access = policy
            return changed
        }!
    }

    /// Reads one organization's settings under a row lock, stores what `change` makes of
    /// them (nil: nothing changes) and moves the version, in one transaction.
    private func modifying(_ organization: String,
                           _ change: @escaping @Sendable (OrganizationSettings?) -> OrganizationSettings?) async throws -> OrganizationSettings? {
        try await withTimeout(self.timeout) {
            try await self.transaction { connection in
                var current: OrganizationSettings?
                let rows = try await connection.query("SELECT settings FROM ssogate_org_settings WHERE organization = \(organization) FOR UPDATE",
                                                      logger: self.logger)
                for try await text in rows.decode(String.self) { current = try SQLiteStore.decode(text) }
                guard let next = change(current) else { return nil }
                let text = try SQLiteStore.encode(next)
                try await connection.query("""
                    INSERT INTO ssogate_org_settings (organization, settings) VALUES (\(organization), \(text))
                    ON CONFLICT (organization) DO UPDATE SET settings = EXCLUDED.settings
                    """, logger: self.logger)
                try await self.bumpVersion(connection)
                return next
            }
        }
    }

    private func bumpVersion(_ connection: PostgresConnection) async throws {
        try await connection.query("UPDATE ssogate_settings_version SET version = version + 1 WHERE id = 1", logger: logger)
    }

    // MARK: - Audit

    package func record(_ event: AuditEvent) async throws {
        try await withTimeout(self.timeout) { () async throws -> Void in
            try await self.client.query("""
                INSERT INTO ssogate_audit_events (time, action, organization, actor, result, reason, subject, ip, request_id)
                VALUES (\(event.time), \(event.action), \(event.organization), \(event.actor), \(event.result), \(event.reason),
                        \(event.subject), \(event.ip), \(event.requestID))
                """, logger: self.logger)
        }
    }

    package func events(_ query: AuditQuery) async throws -> [AuditEvent] {
        try await withTimeout(self.timeout) {
            // Absent filters are NULL and match everything.
            let rows = try await self.client.query("""
                SELECT time, action, organization, actor, result, reason, subject, ip, request_id FROM ssogate_audit_events
                WHERE organization = \(query.organization)
                  AND (\(query.action)::text IS NULL OR action = \(query.action))
                  AND (\(query.result)::text IS NULL OR result = \(query.result))
                  AND (\(query.since)::bigint IS NULL OR time >= \(query.since))
                  AND (\(query.until)::bigint IS NULL OR time <= \(query.until))
                ORDER BY time DESC, id DESC LIMIT \(query.limit)
                """, logger: self.logger)
            var out: [AuditEvent] = []
            for try await (time, action, organization, actor, result, reason, subject, ip, requestID)
                in rows.decode((Int64, String, String, String?, String, String?, String?, String?, String?).self) {
                out.append(AuditEvent(time: time, action: action, organization: organization, actor: actor, result: result,
                                      reason: reason, subject: subject, ip: ip, requestID: requestID))
            }
            return out
        }
    }

    package func purgeAudit(before: Int64) async throws -> Int {
        try await withTimeout(self.timeout) {
            let rows = try await self.client.query("DELETE FROM ssogate_audit_events WHERE time < \(before) RETURNING id", logger: self.logger)
            var count = 0
            for try await _ in rows.decode(Int64.self) { count += 1 }
            return count
        }
    }

    // MARK: - Admin tokens

    package func storeAdminToken(_ token: AdminToken) async throws {
        try await storeCredential(token, table: "ssogate_admin_tokens")
    }

    package func adminToken(hash: String, now: Int64) async throws -> AdminToken? {
        try await withTimeout(self.timeout) {
            try await Self.credential(try await self.client.query("""
                SELECT hash, id, organization, created, expires FROM ssogate_admin_tokens WHERE hash = \(hash) AND expires > \(now)
                """, logger: self.logger))
        }
    }

    /// The first row of (hash, id, organization, created, expires) as a credential.
    private static func credential(_ rows: PostgresRowSequence) async throws -> AdminToken? {
        for try await (hash, id, organization, created, expires) in rows.decode((String, String, String, Int64, Int64).self) {
            return AdminToken(id: id, organization: organization, hash: hash, created: created, expires: expires)
        }
        return nil
    }

    // MARK: - Admin links

    package func storeAdminLink(_ link: AdminToken) async throws {
        try await storeCredential(link, table: "ssogate_admin_links")
    }

    /// An admin token or a one-time link, into its table (a constant of this file, never input).
    private func storeCredential(_ credential: AdminToken, table: StaticString) async throws {
        try await withTimeout(self.timeout) { () async throws -> Void in
            try await self.client.query("""
                INSERT INTO \(unescaped: "\(table)") (hash, id, organization, created, expires)
                VALUES (\(credential.hash), \(credential.id), \(credential.organization), \(credential.created), \(credential.expires))
                """, logger: self.logger)
        }
    }

    package func consumeAdminLink(hash: String, now: Int64) async throws -> AdminToken? {
        try await withTimeout(self.timeout) {
            try await Self.credential(try await self.client.query("""
                UPDATE ssogate_admin_links SET used = true WHERE hash = \(hash) AND NOT used AND expires > \(now)
                RETURNING hash, id, organization, created, expires
                """, logger: self.logger))
        }
    }
}
