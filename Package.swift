// swift-tools-version:6.1
import PackageDescription

// One target per trust boundary (docs/CODE-STYLE.md). HTTPWire reads and writes HTTP/1 heads as
// values (NIO's ByteBuffer and HTTP types, no channels); Gateway, Demo and the executables run
// the event loops. XMLCore, CryptoCore, Compression and HTTP2Session hold the pointers of
// libxml2, OpenSSL, zlib/Brotli and libnghttp2; no other target touches C memory.
let package = Package(
    name: "SSOGate",
    products: [
        .executable(name: "ssogate", targets: ["ssogate"]),
        .executable(name: "ssogate-bench", targets: ["ssogate-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Fetches IdP metadata by URL (timeouts, size limit, TLS).
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // The state store several replicas share.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // The embedded state store (the default), on the system SQLite.
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        // Signs the identity JWT for the upstream and publishes its JWKS.
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Lock-free counters of the per-loop latency histogram (already in NIO's graph).
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // OpenTelemetry spans over OTLP/HTTP (the gRPC exporter is left out: its packages
        // would double the build for a transport a local collector does not need).
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0",
                       providers: [.apt(["libxml2-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // HTTP/2 framing, HPACK and flow control (docs/MEASURED.md: ~20x swift-nio-http2's requests/s here).
        .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "CBrotli", pkgConfig: "libbrotlienc", providers: [.apt(["libbrotli-dev"])]),
        .target(name: "XMLCore", dependencies: ["CLibXML2"]),
        // Streaming gzip/deflate/br, for the banner in compressed pages (owns zlib/Brotli state).
        .target(name: "Compression", dependencies: ["CZlib", "CBrotli"]),
        .target(name: "CryptoCore", dependencies: ["COpenSSL"]),
        .target(name: "XMLDSig", dependencies: ["XMLCore", "CryptoCore"]),
        .target(name: "SAML", dependencies: ["XMLDSig", "XMLCore", "CryptoCore", "Compression"]),
        .target(name: "Sessions", dependencies: ["CryptoCore"]),
        .target(name: "Config", dependencies: [
            "CryptoCore",
            .product(name: "Yams", package: "Yams"),
        ]),
        // The wire: request and response heads, framing, paths, header policy. Bytes and
        // values in, decisions out; no channels, no configuration, fuzzable on its own.
        .target(name: "HTTPWire", dependencies: [
            "CryptoCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // Access: the SSO flow, protected paths, sessions remembered per loop, login
        // admission, the signed identity for the upstream. Decides; holds no connection.
        // libnghttp2's session behind Swift types: the only target holding its pointers.
        .target(name: "HTTP2Session", dependencies: ["CNGHTTP2"]),
        .target(name: "Access", dependencies: [
            "HTTPWire", "Config", "SAML", "Sessions", "XMLDSig", "XMLCore", "CryptoCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "JWTKit", package: "jwt-kit"),
        ]),
        // The proxy: the upstream pool, one exchange and its state machine, the banner
        // rewrite of response bodies. Moves bytes; decides nothing about who gets in.
        .target(name: "Proxy", dependencies: [
            "Access", "HTTPWire", "Config", "Compression", "XMLCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOTLS", package: "swift-nio"),
        ]),
        // What the gateway remembers: spent IDs now, later settings, audit events, tokens.
        // SQLite (embedded, the default) or PostgreSQL (replicas); no event loop waits on it.
        .target(name: "StateStore", dependencies: [
            "Config", "SAML", "Sessions",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Gateway", dependencies: [
            "Proxy", "Access", "HTTPWire", "HTTP2Session", "StateStore", "Config", "SAML", "Sessions", "XMLDSig", "XMLCore", "CryptoCore", "Compression",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "OTel", package: "swift-otel"),
            .product(name: "Tracing", package: "swift-distributed-tracing"),
        ]),
        .target(name: "DevIdP", dependencies: ["SAML", "XMLDSig", "XMLCore", "CryptoCore", "Compression"]),
        .target(name: "Demo", dependencies: [
            "DevIdP", "Gateway", "HTTPWire", "XMLCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .executableTarget(name: "ssogate", dependencies: [
            "Config", "Gateway", "StateStore", "XMLCore", "Demo", "DevIdP", "CryptoCore", "SAML", "HTTP2Session",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], plugins: ["VersionStamp"]),
        // `git describe` at build time, for `ssogate --version`.
        .plugin(name: "VersionStamp", capability: .buildTool()),
        // Fuzzing: `make fuzz` builds ssogate-fuzz with -sanitize=fuzzer,address -DFUZZING
        // (libFuzzer's entry point); otherwise it replays the inputs it is given.
        .target(name: "FuzzTargets", dependencies: ["SAML", "XMLDSig", "XMLCore", "CryptoCore"]),
        .executableTarget(name: "ssogate-fuzz", dependencies: ["FuzzTargets", "Gateway"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        // Micro-benchmarks (benchmarks/saml-bench.sh runs them in release beside xmlsec1).
        .executableTarget(name: "ssogate-bench", dependencies: ["SAML", "XMLDSig", "XMLCore", "CryptoCore", "FuzzTargets"]),
        .target(name: "TestSupport", dependencies: [
            "TestFixtures",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ], path: "Tests/TestSupport"),
        // Tests/Fixtures as files, and the one SAML response builder of the tests.
        .target(name: "TestFixtures", dependencies: ["XMLDSig", "XMLCore", "CryptoCore"], path: "Tests/TestFixtures"),
        .testTarget(name: "XMLCoreTests", dependencies: ["XMLCore", "TestFixtures"]),
        .testTarget(name: "CryptoCoreTests", dependencies: ["CryptoCore", "TestFixtures"]),
        .testTarget(name: "XMLDSigTests", dependencies: ["XMLDSig", "XMLCore", "CryptoCore", "TestFixtures"]),
        .testTarget(name: "SAMLTests", dependencies: ["SAML", "XMLDSig", "XMLCore", "CryptoCore", "Compression", "FuzzTargets", "TestFixtures"]),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets", "Gateway", "TestFixtures"]),
        .testTarget(name: "SessionsTests", dependencies: ["Sessions", "CryptoCore"]),
        .testTarget(name: "CompressionTests", dependencies: ["Compression", "TestFixtures"]),
        .testTarget(name: "DevIdPTests", dependencies: ["DevIdP", "SAML", "XMLDSig", "CryptoCore", "XMLCore"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config"],
                    resources: [.copy("Golden")]),
        .testTarget(name: "GatewayTests", dependencies: [
            "Gateway", "Proxy", "Access", "HTTPWire", "StateStore", "Config", "TestSupport", "TestFixtures", "SAML", "Sessions", "XMLDSig", "XMLCore", "CryptoCore", "Compression",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Yams", package: "Yams"),
        ]),
    ]
)

// Members of a module's types are visible only in files that import it. Without this, any
// module linked in lends its extensions to every file: once GRDB (whose SQL type takes
// string literals and has `joined()` and `??`) was linked, a test's `[String].joined()`
// silently became SQL.
for target in package.targets where target.type != .system && target.type != .plugin {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("MemberImportVisibility")]
}
