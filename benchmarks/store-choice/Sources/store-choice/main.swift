import Foundation
import GRDB
import NIOPosix
import SQLiteNIO

// Which SQLite library the state store uses, by measurement (issue 15): a login spends two
// IDs (request, assertion) all or none, one write transaction that checks for live IDs and
// inserts both, as the store does. Logins per second with one caller (one ACS at a time)
// and eight, per library and `synchronous` mode, on a file in the temporary folder.
//
//   cd benchmarks/store-choice && swift build -c release && .build/release/store-choice 6000
let n = Int(CommandLine.arguments.dropFirst().first ?? "3000")!
let dir = FileManager.default.temporaryDirectory.appendingPathComponent("storebench-\(getpid())")
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
let schema = "CREATE TABLE IF NOT EXISTS spent (id TEXT PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID"

/// Callers take turns: an actor alone would not do, it is reentrant at each await.
final class Turn: @unchecked Sendable {
    private let lock = NSLock()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private func acquire(_ c: CheckedContinuation<Void, Never>) {
        lock.lock(); defer { lock.unlock() }
        if busy { waiting.append(c) } else { busy = true; c.resume() }
    }
    private func release() {
        lock.lock(); defer { lock.unlock() }
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
    func run<T>(_ body: () async throws -> T) async rethrows -> T {
        await withCheckedContinuation { acquire($0) }
        defer { release() }
        return try await body()
    }
}

func ids(_ i: Int, _ tag: String) -> (String, String) { ("req-\(tag)-\(i)-\(UUID().uuidString)", "asr-\(tag)-\(i)-\(UUID().uuidString)") }

func grdb(_ sync: String, concurrency: Int) async throws -> Double {
    var config = Configuration()
    config.prepareDatabase { db in
        try db.execute(sql: "PRAGMA synchronous = \(sync)")
    }
    let path = dir.appendingPathComponent("grdb-\(sync)-\(concurrency).db").path
    let pool = try DatabasePool(path: path, configuration: config)
    try await pool.write { db in try db.execute(sql: schema) }
    let start = Date()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for c in 0..<concurrency {
            group.addTask {
                for i in stride(from: c, to: n, by: concurrency) {
                    let (a, b) = ids(i, "g")
                    let now = Int(Date().timeIntervalSince1970)
                    let ok = try await pool.write { db -> Bool in
                        let live = try Int.fetchOne(db, sql: "SELECT count(*) FROM spent WHERE id IN (?, ?) AND expires > ?", arguments: [a, b, now]) ?? 0
                        guard live == 0 else { return false }
                        try db.execute(sql: "INSERT INTO spent (id, expires) VALUES (?, ?), (?, ?) ON CONFLICT(id) DO UPDATE SET expires = excluded.expires",
                                       arguments: [a, now + 300, b, now + 300])
                        return true
                    }
                    precondition(ok)
                }
            }
        }
        try await group.waitForAll()
    }
    return Double(n) / Date().timeIntervalSince(start)
}

func sqlitenio(_ sync: String, concurrency: Int) async throws -> Double {
    let path = dir.appendingPathComponent("nio-\(sync)-\(concurrency).db").path
    let conn = try await SQLiteConnection.open(storage: .file(path: path))
    try await conn.query("PRAGMA journal_mode = WAL", []) { _ in }
    try await conn.query("PRAGMA synchronous = \(sync)", []) { _ in }
    try await conn.query(schema, []) { _ in }
    // One connection: transactions from concurrent callers would interleave on it, so
    // callers take turns (an actor), as a store on one connection must.
    let turn = Turn()
    let start = Date()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for c in 0..<concurrency {
            group.addTask {
                for i in stride(from: c, to: n, by: concurrency) {
                    let (a, b) = ids(i, "n")
                    let now = Int(Date().timeIntervalSince1970)
                    try await turn.run {
                        try await conn.query("BEGIN IMMEDIATE", []) { _ in }
                        let live = try await conn.query("SELECT count(*) AS c FROM spent WHERE id IN (?, ?) AND expires > ?", [.text(a), .text(b), .integer(now)])
                        precondition(live.first?.column("c")?.integer == 0)
                        try await conn.query("INSERT INTO spent (id, expires) VALUES (?, ?), (?, ?) ON CONFLICT(id) DO UPDATE SET expires = excluded.expires",
                                             [.text(a), .integer(now + 300), .text(b), .integer(now + 300)]) { _ in }
                        try await conn.query("COMMIT", []) { _ in }
                    }
                }
            }
        }
        try await group.waitForAll()
    }
    try await conn.close()
    return Double(n) / Date().timeIntervalSince(start)
}

print("SQLite (sqlite-nio, vendored) \(SQLiteConnection.libraryVersionString()); \(n) logins each")
for sync in ["NORMAL", "FULL"] {
    for c in [1, 8] {
        let g = try await grdb(sync, concurrency: c)
        let s = try await sqlitenio(sync, concurrency: c)
        print(String(format: "synchronous=%@ callers=%d: GRDB %.0f logins/s, sqlite-nio %.0f logins/s", sync, c, g, s))
    }
}
try? FileManager.default.removeItem(at: dir)
