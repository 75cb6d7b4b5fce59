// swift-tools-version:6.1
import PackageDescription

// GRDB (system SQLite) against sqlite-nio (vendored SQLite) for the state store; see main.swift.
let package = Package(
    name: "store-choice",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(name: "store-choice", dependencies: [
            .product(name: "SQLiteNIO", package: "sqlite-nio"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
    ]
)
