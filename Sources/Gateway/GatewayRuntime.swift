import Config
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Everything a request needs that a reload may replace, built whole beside the old one
/// and swapped in one step (STYLE.md "Configuration").
final class GatewayRuntime: Sendable {
    let configuration: GatewayConfiguration
    let upstreamTimeout: TimeAmount
    let trustedProxies: [CIDR]

    init(configuration: GatewayConfiguration) {
        self.configuration = configuration
        self.upstreamTimeout = configuration.upstreamTimeout.timeAmount
        self.trustedProxies = configuration.trustedProxies
    }

    func isTrusted(peer: [UInt8]?) -> Bool {
        guard let peer, !trustedProxies.isEmpty else { return false }
        return trustedProxies.contains { $0.contains(peer) }
    }
}

/// State shared by every connection of one gateway: the current runtime (swappable),
/// metrics, loggers and the per-loop upstream pools.
final class GatewayShared: Sendable {
    private let current: NIOLockedValueBox<GatewayRuntime>
    let metrics: GatewayMetrics
    let logger: Logger
    let accessLogger: Logger?
    let scheme: String
    private let pools: [ObjectIdentifier: UpstreamPoolBox]

    init(runtime: GatewayRuntime, metrics: GatewayMetrics, logger: Logger, accessLogger: Logger?,
         group: EventLoopGroup) {
        self.current = NIOLockedValueBox(runtime)
        self.metrics = metrics
        self.logger = logger
        self.accessLogger = accessLogger
        self.scheme = "http"
        var pools: [ObjectIdentifier: UpstreamPoolBox] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = UpstreamPoolBox(UpstreamPool(eventLoop: loop))
        }
        self.pools = pools
    }

    var runtime: GatewayRuntime { current.withLockedValue { $0 } }

    func swap(_ runtime: GatewayRuntime) { current.withLockedValue { $0 = runtime } }

    /// The pool of `loop`. Each pool is only used on its own loop.
    func pool(for loop: EventLoop) -> UpstreamPool { pools[ObjectIdentifier(loop)]!.pool }

    func closeIdleUpstreams() {
        for box in pools.values {
            box.pool.eventLoop.execute { box.pool.closeAll() }
        }
    }
}

/// Carries a loop-confined pool across the Sendable boundary of the shared state; every
/// use happens on `pool.eventLoop` (checked by `preconditionInEventLoop` in the pool).
final class UpstreamPoolBox: @unchecked Sendable {
    let pool: UpstreamPool
    init(_ pool: UpstreamPool) { self.pool = pool }
}

extension Duration {
    var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
