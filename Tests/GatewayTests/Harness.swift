import Config
import Foundation
import Gateway
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TestSupport

/// Log records a test can assert on ("every error logs one line with a reason").
final class CapturedLogs: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])
    func append(_ line: String) { lines.withLockedValue { $0.append(line) } }
    var all: [String] { lines.withLockedValue { $0 } }
    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }
}

struct CapturingLogHandler: LogHandler {
    let sink: CapturedLogs
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let meta = (event.metadata ?? [:]).merging(metadata) { a, _ in a }
        sink.append("\(event.level) \(event.message) " + meta.keys.sorted().map { "\($0)=\(meta[$0]!)" }.joined(separator: " "))
    }
}

/// The real gateway, in this process, on an ephemeral loopback port in front of `upstream`.
struct Harness {
    let server: GatewayServer
    let port: Int
    let logs: CapturedLogs
    let accessLogs: CapturedLogs

    static func yaml(upstreamPort: Int, extra: String = "") -> String {
        """
        listen: "127.0.0.1:0"
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:\(upstreamPort)"
        session:
          secrets: ["0123456789abcdef0123456789abcdef-test"]
        \(memoryUnlessGiven(extra))
        \(extra)
        """
    }

    /// `store: memory` unless the test names a store: the default SQLite file would land in
    /// the working directory (the store's own tests use temporary folders).
    static func memoryUnlessGiven(_ extra: String) -> String {
        extra.contains("store:") ? "" : "store: memory"
    }

    static func start(upstreamPort: Int, extra: String = "") async throws -> Harness {
        let configuration = try ConfigLoader.load(yaml: yaml(upstreamPort: upstreamPort, extra: extra), environment: [:], baseDirectory: ".")
        let logs = CapturedLogs()
        let accessLogs = CapturedLogs()
        let server = GatewayServer(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                                   logger: Logger(label: "test") { _ in CapturingLogHandler(sink: logs) },
                                   accessLogger: Logger(label: "access") { _ in CapturingLogHandler(sink: accessLogs) })
        let address = try await server.start()
        return Harness(server: server, port: address.port!, logs: logs, accessLogs: accessLogs)
    }

    func stop() async { await server.shutdown(gracePeriod: .milliseconds(200)) }

    func client(timeout: Double = 10) throws -> RawHTTPClient { try RawHTTPClient(port: port, timeout: timeout) }

    /// One request on a new connection.
    func request(_ raw: String, forHead: Bool = false) throws -> RawHTTPClient.Response {
        let c = try client()
        try c.send(raw)
        return try c.readResponse(forHead: forHead)
    }
}

/// Decodes the JSON the test upstream's `/echo` answers with.
struct Echo: Decodable {
    let method: String
    let uri: String
    let headers: [[String]]
    let body_bytes: Int
    let body: String

    init(_ response: RawHTTPClient.Response) throws {
        self = try JSONDecoder().decode(Echo.self, from: Data(response.body))
    }

    func values(_ name: String) -> [String] {
        headers.filter { $0[0].lowercased() == name.lowercased() }.map { $0[1] }
    }
    var names: [String] { headers.map { $0[0].lowercased() } }
}

/// Runs `body` with a fresh upstream and gateway, always stopping both.
func withGateway<T>(extra: String = "", _ body: (Harness, TestUpstream) async throws -> T) async throws -> T {
    let upstream = try await TestUpstream.start()
    let harness = try await Harness.start(upstreamPort: upstream.port, extra: extra)
    do {
        let result = try await body(harness, upstream)
        await harness.stop()
        await upstream.stop()
        return result
    } catch {
        await harness.stop()
        await upstream.stop()
        throw error
    }
}

/// Runs blocking work (synchronous socket I/O) on a thread of its own and awaits it. On
/// Swift's cooperative pool (two threads here) a blocked test leaves the gateway's async
/// work without a thread: jwt-kit's signing of `X-SSO-Assertion` then waits until the
/// blocked recv times out.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
