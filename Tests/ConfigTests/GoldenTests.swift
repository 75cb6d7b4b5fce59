@testable import Config
import Foundation
import Testing

/// Every `Golden/NAME.yaml` is loaded through all four stages; the problems reported, one
/// `keyPath: message` per line (or `ok`), must equal `Golden/NAME.expected` exactly.
@Suite("Configuration golden files")
struct GoldenTests {
    static let folder = Bundle.module.url(forResource: "Golden", withExtension: nil)!
    static let environment = ["SSOGATE_TEST_SECRET": "0123456789abcdef0123456789abcdef-from-env"]

    static var cases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
    }

    @Test func thereAreGoldenCases() {
        #expect(Self.cases.count >= 25)
    }

    @Test(arguments: cases)
    func golden(name: String) throws {
        let yaml = try String(contentsOf: Self.folder.appendingPathComponent(name + ".yaml"), encoding: .utf8)
        let expected = try String(contentsOf: Self.folder.appendingPathComponent(name + ".expected"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        let actual: [String]
        do {
            _ = try ConfigLoader.load(yaml: yaml, environment: Self.environment, baseDirectory: Self.folder.path)
            actual = ["ok"]
        } catch {
            actual = error.issues.map(\.description)
        }
        #expect(actual == expected, "\(name)")
    }
}

@Suite("Configuration values")
struct ConfigValueTests {
    private let base = """
    public_url: "https://hub.example.test/"
    upstream: "http://127.0.0.1:9000"
    session: {secrets: ["0123456789abcdef0123456789abcdef"]}
    """

    private func store(_ line: String?) throws -> GatewayConfiguration.Store {
        try ConfigLoader.load(yaml: base + (line.map { "\nstore: \"\($0)\"" } ?? ""), environment: [:], baseDirectory: "/etc/ssogate").store
    }

    private func storeProblems(_ line: String) -> [String] {
        do {
            _ = try store(line)
            return []
        } catch {
            return (error as? ConfigError)?.issues.map(\.description) ?? ["\(error)"]
        }
    }

    @Test func theStoreIsAnSQLiteFileBesideTheConfigurationByDefault() throws {
        #expect(try store(nil) == .sqlite(path: "/etc/ssogate/ssogate.db"))
        #expect(try store("sqlite:state/gate.db") == .sqlite(path: "/etc/ssogate/state/gate.db"))
        #expect(try store("sqlite:/var/lib/ssogate/state.db") == .sqlite(path: "/var/lib/ssogate/state.db"))
        #expect(try store("memory") == .memory)
    }

    @Test func postgresTLSIsReadAsLibpqSpellsIt() throws {
        func tls(_ query: String) throws -> GatewayConfiguration.PostgresTLS? {
            guard case .postgres(let p) = try store("postgres://u:p@db.example:5433/ssogate" + query) else { return nil }
            return p.tls
        }
        #expect(try tls("") == .prefer)
        #expect(try tls("?sslmode=disable") == .disable)
        #expect(try tls("?sslmode=require") == .require)
        #expect(try tls("?sslmode=require&sslrootcert=ca.pem") == .verifyCA(roots: .file("/etc/ssogate/ca.pem")))
        #expect(try tls("?sslmode=verify-ca&sslrootcert=/etc/ssl/ca.pem") == .verifyCA(roots: .file("/etc/ssl/ca.pem")))
        #expect(try tls("?sslmode=verify-full&sslrootcert=system") == .verifyFull(roots: .system))
    }

    @Test func aBadStoreIsNamedWithWhatToWrite() {
        #expect(storeProblems("sqlite:") == ["store: sqlite: needs a file path (sqlite:ssogate.db, sqlite:/var/lib/ssogate/state.db)"])
        #expect(storeProblems("postgres://u@db/x?sslmode=allow") == ["store: sslmode must be disable, prefer, require, verify-ca or verify-full"])
        #expect(storeProblems("postgres://u@db/x?sslmode=verify-full")
                == ["store: sslmode=verify-full needs sslrootcert (a PEM file of the CA certificates, or system)"])
        #expect(storeProblems("postgres://u@db/x?sslcert=a.pem").first?.hasPrefix("store: unknown URL parameter sslcert") == true)
        #expect(storeProblems("mysql://u@db/x").first?.hasPrefix("store: must be sqlite:PATH, memory or postgres://") == true)
    }

    @Test func theListenerIsPlainWithHTTP2ByDefault() throws {
        let c = try ConfigLoader.load(yaml: base, environment: [:], baseDirectory: ".")
        #expect(c.tls == nil && c.hsts == nil)
        #expect(c.http2 == .init(enabled: true, maxConcurrentStreams: 100))
    }

    @Test func tlsHSTSAndHTTP2KeysAreRead() throws {
        let folder = GoldenTests.folder.path
        let yaml = try String(contentsOfFile: folder + "/tls-ok.yaml", encoding: .utf8)
        let c = try ConfigLoader.load(yaml: yaml, environment: GoldenTests.environment, baseDirectory: folder)
        #expect(c.tls?.certificateFile == folder + "/tls/server.crt")
        #expect(c.tls?.certificateChainPEM.contains("BEGIN CERTIFICATE") == true)
        #expect(c.tls?.privateKeyPEM.contains("PRIVATE KEY") == true)
        #expect(c.hsts?.headerValue == "max-age=15552000; includeSubDomains")
        #expect(c.http2 == .init(enabled: true, maxConcurrentStreams: 250))
    }

    @Test func defaultsAreFilledInAndTheURLIsNormalised() throws {
        let c = try ConfigLoader.load(yaml: base, environment: [:], baseDirectory: ".")
        #expect(c.listen == .init(host: "127.0.0.1", port: 8080))
        #expect(c.publicURL == "https://hub.example.test")
        #expect(c.publicURLIsHTTPS)
        #expect(c.upstreamTimeout == .seconds(60))
        #expect(c.headerTimeout == .seconds(15))
        #expect(c.idleTimeout == .seconds(75))
        #expect(c.shutdownTimeout == .seconds(30))
        #expect(c.clockSkew == .seconds(60))
        #expect(c.session.cookieName == "ssogate_session")
        #expect(c.session.ttl == .seconds(8 * 3600))
        #expect(c.unauthenticated == .banner)
        #expect(c.accessLog)
        #expect(c.trustedProxies.isEmpty)
    }

    @Test func anEnvironmentReferenceIsReadAndAnUnsetOneIsAnError() throws {
        let yaml = base.replacingOccurrences(of: "[\"0123456789abcdef0123456789abcdef\"]", with: "[\"${S}\"]")
        let c = try ConfigLoader.load(yaml: yaml, environment: ["S": String(repeating: "k", count: 40)], baseDirectory: ".")
        #expect(c.session.secrets == [Array(String(repeating: "k", count: 40).utf8)])
        #expect(ConfigLoader.check(yaml: yaml, environment: [:]).map(\.description) == ["session.secrets[0]: environment variable S is not set or empty"])
    }

    @Test func patternsSplitIntoSegmentsWithTheOrgPlaceholder() throws {
        let c = try ConfigLoader.load(yaml: base + "\nprotected_paths: [\"/{org}/\", \"/datasets/{org}/\", \"/spaces/{org}\"]",
                                      environment: [:], baseDirectory: ".")
        #expect(c.protectedPaths.map(\.segments) == [[nil], ["datasets", nil], ["spaces", nil]])
        #expect(c.protectedPaths.map(\.coversSubtree) == [true, true, false])
    }

    @Test(arguments: [("90s", 90_000), ("15m", 900_000), ("8h", 28_800_000), ("7d", 604_800_000), ("1h30m", 5_400_000), ("250ms", 250)])
    func durationsParse(text: String, milliseconds: Int64) {
        #expect(DurationText.parse(text) == .milliseconds(milliseconds))
    }

    @Test(arguments: ["", "10", "s", "10x", "-5m", "1.5h", "10 s", "99999999999d"])
    func malformedDurationsDoNot(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test func cidrsMatchTheirNetworksOnly() throws {
        let v4 = try #require(CIDR("10.1.0.0/16"))
        #expect(v4.contains([10, 1, 200, 3]))
        #expect(!v4.contains([10, 2, 0, 1]))
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]
        #expect(v4.contains(mapped))
        let v6 = try #require(CIDR("fd00::/8"))
        #expect(v6.contains([0xfd] + Array(repeating: 1, count: 15)))
        #expect(!v6.contains([10, 1, 2, 3]))
        let host = try #require(CIDR("::1"))
        #expect(host.contains(Array(repeating: 0, count: 15) + [1]))
        for bad in ["10.0.0.0/33", "10.0.0/8", "1.2.3.4/", "::1/129", "nonsense", "1:2:3:4:5:6:7:8:9", "256.1.1.1"] {
            #expect(CIDR(bad) == nil, "\(bad)")
        }
    }
}
