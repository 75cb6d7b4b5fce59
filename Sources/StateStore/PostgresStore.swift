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
package final class PostgresStore: ReplayStore {
    static let timeout: Duration = .seconds(3)
    static let purgeEvery: Duration = .seconds(60)
    /// The schema this code expects; a migration brings an older database up to it.
    static let schemaVersion = 1

    private let client: PostgresClient
    private let logger: Logger

    package init(_ settings: GatewayConfiguration.Postgres, group: EventLoopGroup, logger: Logger) {
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

    /// Runs the pool, migrates the schema (retrying while the database is not up yet) and
    /// purges expired IDs, until cancelled.
    package func run() async {
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

    /// Version 1: the table of spent IDs. Serialized by an advisory lock, so replicas that
    /// start together do not race on `CREATE TABLE`.
    package func migrate() async throws {
        try await client.withConnection { connection in
            try await connection.query("BEGIN", logger: self.logger)
            do {
                try await connection.query("SELECT pg_advisory_xact_lock(7270717)", logger: self.logger)
                try await connection.query("CREATE TABLE IF NOT EXISTS ssogate_schema (version integer NOT NULL)", logger: self.logger)
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS ssogate_spent_ids (id text PRIMARY KEY, expires timestamptz NOT NULL)
                    """, logger: self.logger)
                try await connection.query("CREATE INDEX IF NOT EXISTS ssogate_spent_ids_expires ON ssogate_spent_ids (expires)", logger: self.logger)
                try await connection.query("DELETE FROM ssogate_schema", logger: self.logger)
                try await connection.query("INSERT INTO ssogate_schema (version) VALUES (\(Self.schemaVersion))", logger: self.logger)
                try await connection.query("COMMIT", logger: self.logger)
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
        do {
            // All or none: when an ID comes back live, the transaction (and whatever it
            // inserted) is rolled back.
            let inserted = try await withTimeout(Self.timeout) {
                try await self.client.withConnection { connection in
                    try await connection.query("BEGIN", logger: self.logger)
                    do {
                        let rows = try await connection.query("""
                            INSERT INTO ssogate_spent_ids (id, expires)
                            SELECT * FROM unnest(\(ids)::text[], \(expiries)::timestamptz[]) ORDER BY 1
                            ON CONFLICT (id) DO UPDATE SET expires = EXCLUDED.expires WHERE ssogate_spent_ids.expires <= \(now)
                            RETURNING id
                            """, logger: self.logger)
                        var got: Set<String> = []
                        for try await id in rows.decode(String.self) { got.insert(id) }
                        try await connection.query(got.count == Set(ids).count ? "COMMIT" : "ROLLBACK", logger: self.logger)
                        return got
                    } catch {
                        try? await connection.query("ROLLBACK", logger: self.logger)
                        throw error
                    }
                }
            }
            if let live = spends.first(where: { !inserted.contains($0.id) }) { return .alreadySpent(live) }
            return .spent
        } catch {
            logger.error("replay store did not record a login", metadata: ["error": "\(String(reflecting: error))"])
            return .unavailable
        }
    }
}
