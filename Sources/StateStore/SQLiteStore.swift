import Foundation
// internal: no module that imports StateStore sees GRDB (its string-literal and operator
// overloads would change what plain Swift means there).
internal import GRDB
import Logging
import SAML

/// The embedded store, the default (docs/SPEC.md "State store"): one SQLite file, so that a
/// restart forgets nothing (an assertion spent before it stays spent after it).
///
/// GRDB over the system SQLite, in WAL mode: chosen over sqlite-nio by measurement
/// (benchmarks/store-choice: a login's two IDs spent in one transaction, 1.2-1.7x the rate
/// with one caller and 1.6-3x with eight, because a whole transaction is one hop to GRDB's
/// writer queue where sqlite-nio hops to a thread pool per statement). GRDB also brings
/// statement caching and a migrator that records which schema versions were applied.
///
/// Every commit is synchronous (`PRAGMA synchronous = FULL`): a login is accepted only
/// after its IDs are on disk, so not even a power cut un-spends them. No event loop waits
/// for SQLite: GRDB runs the statements on its own writer queue.
package final class SQLiteStore: ReplayStore {
    static let timeout: Duration = .seconds(3)
    static let purgeEvery: Duration = .seconds(60)

    package let path: String
    private let logger: Logger
    private let pool: DatabasePool

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
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
            if try pool.read({ try Self.migrator.hasBeenSuperseded($0) }) {
                throw StoreError("sqlite:\(path): written by a newer ssogate (schema \(try pool.read { try Self.migrator.appliedIdentifiers($0) }.sorted().last ?? "?")); this one knows up to \(Self.schemaVersion)")
            }
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
        return migrator
    }()

    static let schemaVersion = "1 spent ids"

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

    package func close() throws {
        try pool.close()
    }
}
