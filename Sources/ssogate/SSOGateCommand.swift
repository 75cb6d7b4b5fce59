import ArgumentParser
import Config
import CryptoCore
import Demo
import Foundation
import Gateway
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import XMLCore

@main
struct SSOGateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssogate",
        abstract: "An authenticating reverse proxy that puts SAML single sign-on in front of a web application.",
        version: "0.1.0",
        subcommands: [Serve.self, Check.self, Demo.self])
}

/// Reads and loads a configuration file, printing every problem with its key path.
func loadOrExit(_ path: String) throws -> GatewayConfiguration {
    do {
        return try ConfigLoader.load(path: path)
    } catch {
        for issue in error.issues { FileHandle.standardError.write(Data("\(path): \(issue)\n".utf8)) }
        throw ExitCode(2)
    }
}

/// The application logger; access records have their own buffered handler in the server.
func makeLogger(_ configuration: GatewayConfiguration) -> Logger {
    let level = Logger.Level(configName: configuration.logLevel) ?? .info
    let format = configuration.logFormat
    LoggingSystem.bootstrap { label in GatewayLogHandler(label: label, format: format, level: level) }
    return Logger(label: "ssogate")
}

func runGateway(configuration: GatewayConfiguration, reload: @escaping @Sendable () throws(ConfigError) -> GatewayConfiguration,
                logger: Logger) async throws {
    XMLLibrary.initialize()
    let threads = configuration.workers == 0 ? System.coreCount : configuration.workers
    let server = GatewayServer(configuration: configuration, group: MultiThreadedEventLoopGroup(numberOfThreads: threads),
                               logger: logger)
    let service = GatewayService(server: server, logger: logger, loadConfiguration: reload)
    let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint],
                                                  logger: logger))
    try await group.run()
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")
    @Option(help: "Path of the YAML configuration.") var config: String

    func run() async throws {
        let configuration = try loadOrExit(config)
        let logger = makeLogger(configuration)
        let path = config
        try await runGateway(configuration: configuration, reload: { () throws(ConfigError) in try ConfigLoader.load(path: path) },
                             logger: logger)
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a configuration: exit 0 with a summary, or exit 2 with one line per problem.")
    @Option(help: "Path of the YAML configuration.") var config: String

    func run() async throws {
        let configuration = try loadOrExit(config)
        let enabled = configuration.organizations.filter(\.saml.enabled).count
        func hostPort(_ e: GatewayConfiguration.Endpoint) -> String { e.host.contains(":") ? "[\(e.host)]:\(e.port)" : "\(e.host):\(e.port)" }
        print("\(config): ok (\(configuration.organizations.count) organizations, \(enabled) with SSO enabled; listen \(hostPort(configuration.listen)); upstream \(hostPort(configuration.upstream)))")
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway on loopback in front of a built-in demo page, with no set-up.")
    @Option(help: "Port of the gateway on 127.0.0.1.") var port: Int = 8080

    func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let app = try await DemoUpstream.start(group: group)
        let secret = try SecureRandom().bytes(32).map { String(format: "%02x", $0) }.joined()
        let yaml = """
        listen: "127.0.0.1:\(port)"
        public_url: "http://127.0.0.1:\(port)"
        upstream: "http://127.0.0.1:\(app.localAddress!.port!)"
        session:
          secrets: ["\(secret)"]
        """
        let configuration: GatewayConfiguration
        do {
            configuration = try ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: ".")
        } catch {
            FileHandle.standardError.write(Data("demo configuration: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let logger = makeLogger(configuration)
        FileHandle.standardOutput.write(Data("ssogate demo: open http://127.0.0.1:\(port)/ (Ctrl-C to stop)\n".utf8))
        try await runGateway(configuration: configuration, reload: { () throws(ConfigError) in configuration },
                             logger: logger)
    }
}
