// swift-tools-version:6.1
import PackageDescription

// A measurement aid, not part of ssogate: the smallest reverse proxy built on
// AsyncHTTPClient, to compare with ssogate's own keep-alive pool (benchmarks/RESULTS.md).
let package = Package(
    name: "upstream-client-bench",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        .executableTarget(name: "ahc-proxy", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
    ]
)
