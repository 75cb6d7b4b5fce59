import Config
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Runs a gateway under swift-service-lifecycle: serves until SIGTERM/SIGINT (graceful
/// shutdown, then a bounded drain) and reloads the configuration on SIGHUP.
public struct GatewayService: Service {
    private let server: GatewayServer
    private let loadConfiguration: @Sendable () throws(ConfigError) -> GatewayConfiguration
    private let logger: Logger

    public init(server: GatewayServer, logger: Logger,
                loadConfiguration: @escaping @Sendable () throws(ConfigError) -> GatewayConfiguration) {
        self.server = server
        self.logger = logger
        self.loadConfiguration = loadConfiguration
    }

    public func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        try await server.start()
        for await _ in hangups.cancelOnGracefulShutdown() {
            reload()
        }
        // The drain period in force now, after any reload.
        let drainPeriod = server.configuration.shutdownTimeout.timeAmount
        logger.info("shutting down", metadata: ["drain_ms": "\(drainPeriod.nanoseconds / 1_000_000)"])
        await server.shutdown(gracePeriod: drainPeriod)
        logger.info("stopped")
    }

    /// A new file is used whole or not at all: on any problem the running configuration stays.
    private func reload() {
        do {
            let configuration = try loadConfiguration()
            try server.reload(configuration)
            logger.info("configuration reloaded")
        } catch {
            server.recordFailedReload()
            logger.error("configuration reload rejected; keeping the running configuration", metadata: [
                "problems": "\(error.issues.map(\.description).joined(separator: "; "))",
            ])
        }
    }
}
