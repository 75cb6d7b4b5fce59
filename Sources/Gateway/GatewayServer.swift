import Access
import Config
import Foundation
import HTTPWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Proxy
import SAML
import StateStore

/// The listening gateway: binds, serves, reloads and drains.
public final class GatewayServer: Sendable {
    /// Request heads over this are refused with 431.
    public static let maxRequestHeadBytes = 32 * 1024

    private let shared: GatewayShared
    private let group: EventLoopGroup
    private let serverChannel: NIOLockedValueBox<Channel?> = .init(nil)
    private let adminServerChannel: NIOLockedValueBox<Channel?> = .init(nil)

    /// The admin listener's address, when `admin_listen` is set (tests bind port 0).
    public var adminAddress: SocketAddress? { adminServerChannel.withLockedValue { $0?.localAddress } }
    private let certificateCheck: NIOLockedValueBox<RepeatedTask?> = .init(nil)
    private let refresher: MetadataRefresher
    private let refreshing: NIOLockedValueBox<Task<Void, Never>?> = .init(nil)
    private let connections = ConnectionRegistry()
    public let metrics: GatewayMetrics
    private let logger: Logger

    /// - Parameter accessLogger: where access records go; by default, when `access_log` is
    ///   on, standard output in batches (AccessLogSink).
    /// - Parameter clock: the time the SAML rules and sessions are judged at (tests pin it).
    public init(configuration: GatewayConfiguration, group: EventLoopGroup, logger: Logger,
                accessLogger: Logger? = nil, metrics: GatewayMetrics = GatewayMetrics(),
                clock: @escaping @Sendable () -> Date = { Date() }) {
        self.group = group
        self.metrics = metrics
        self.logger = logger
        // The default access log: each event loop batches its lines to standard output.
        let sink = accessLogger == nil && configuration.accessLog ? AccessLogSink() : nil
        self.shared = GatewayShared(configuration: configuration, metrics: metrics,
                                    logger: logger, accessLogger: configuration.accessLog ? accessLogger : nil,
                                    accessLogSink: sink, group: group, clock: clock,
                                    tracing: configuration.tracing.flatMap { GatewayTracing.make($0, logger: logger) })
        self.refresher = MetadataRefresher(group: group, shared: shared, logger: logger)
    }

    /// Binds the listener and starts serving; returns the bound address (port 0 picks one).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let configuration = shared.runtime.configuration
        if let problem = shared.runtime.problem { throw problem }
        shared.tracing?.start()
        // IdP metadata first, so the first logins can use it (each fetch is bounded).
        await refresher.refreshDue()
        let refresher = self.refresher
        let shared = self.shared
        let postgres = shared.postgres, sqlite = shared.sqlite, clock = shared.clock
        refreshing.withLockedValue { $0 = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await refresher.run() }
                if let postgres { group.addTask { await postgres.run(clock: clock) } }
                if let sqlite { group.addTask { await sqlite.run(clock: clock) } }
                group.addTask { await SettingsSync.run(shared) }
                group.addTask { await SettingsSync.drainAudit(shared) }
                group.addTask { await SessionSync.run(shared) }
                group.addTask { await TokenSync.run(shared) }
            }
        } }
        // The console's settings before the first request, when the store answers soon (a
        // PostgreSQL pool may still be connecting: then the poll brings them within seconds).
        if configuration.organizations.contains(where: { $0.managed == .console }) {
            _ = try? await withTimeout(.seconds(3)) {
                _ = await SettingsSync.seed(shared, skipping: [])
                return await SettingsSync.refresh(shared)
            }
        }
        // Access tokens before the first request too: a restart must not answer a member's
        // git with 401 for the first second.
        _ = try? await withTimeout(.seconds(3)) { await TokenSync.poll(shared, after: -1) }
        let connections = self.connections
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // At most 128 KiB per readiness: what one read event can hand the decoder at once,
            // whatever the handler's backpressure says.
            .childChannelOption(.maxMessagesPerRead, value: 2)
            .childChannelOption(.recvAllocator, value: SocketTuning.clientReceiveAllocator)
            .childChannelOption(.writeBufferWaterMark, value: SocketTuning.writeWaterMark)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configureClientPipeline(channel, shared: shared)
                    connections.add(channel, metrics: shared.metrics)
                }
            }
            .bind(host: configuration.listen.host, port: configuration.listen.port)
            .get()
        serverChannel.withLockedValue { $0 = channel }
        if let admin = configuration.adminListen {
            let adminChannel = try await AdminHandler.bind(admin, group: group, shared: shared)
            adminServerChannel.withLockedValue { $0 = adminChannel }
            logger.info("admin listening", metadata: ["address": "\(adminChannel.localAddress?.ipAddress ?? "?"):\(adminChannel.localAddress?.port ?? 0)",
                                                      "serves": "healthz, ready, metrics"])
        }
        watchCertificates(configuration)
        // Certificates run out while the gateway runs: look again once a day.
        let daily = group.next().scheduleRepeatedTask(initialDelay: .hours(24), delay: .hours(24)) { [weak self] _ in
            guard let self else { return }
            self.watchCertificates(self.configuration)
        }
        certificateCheck.withLockedValue { $0 = daily }
        let address = channel.localAddress!
        logger.info("listening", metadata: [
            "address": "\(address.ipAddress ?? "?"):\(address.port ?? 0)", "upstream": "\(configuration.upstream.host):\(configuration.upstream.port)",
            "tls": "\(configuration.tls == nil ? "off" : "on")",
            "http2": "\(configuration.http2.enabled ? (configuration.tls == nil ? "h2c" : "h2") : "off")",
        ])
        return address
    }

    /// Every connection starts the same way for the runtime current when it opened: TLS
    /// with ALPN choosing HTTP/2 or HTTP/1.1, or on a plain listener the first bytes
    /// choosing (the HTTP/2 preface means h2c with prior knowledge).
    static func configureClientPipeline(_ channel: Channel, shared: GatewayShared) throws {
        let runtime = shared.runtime
        let configuration = runtime.configuration
        let http2 = configuration.http2.enabled
        let sync = channel.pipeline.syncOperations
        // Until a protocol is chosen no handler has a deadline of its own: a peer that
        // connects and never finishes a handshake or a preface is closed after header_timeout.
        let undecided = channel.eventLoop.scheduleTask(in: configuration.headerTimeout.timeAmount) { channel.close(promise: nil) }
        let chosen: @Sendable (Channel, Bool) throws -> Void = { channel, useHTTP2 in
            undecided.cancel()
            let scheme = runtime.tlsContext == nil ? "http" : "https"
            if useHTTP2 {
                try configureHTTP2(channel, shared: shared, scheme: scheme)
            } else {
                try configureHTTP1(channel, shared: shared, scheme: scheme)
            }
        }
        if let tls = runtime.tlsContext {
            try sync.addHandler(NIOSSLServerHandler(context: tls))
            try sync.addHandler(ApplicationProtocolNegotiationHandler { result, channel in
                channel.eventLoop.makeCompletedFuture {
                    if case .negotiated("h2") = result { try chosen(channel, true) } else { try chosen(channel, false) }
                }
            })
        } else if http2 {
            try sync.addHandler(PrefaceSniffer(chosen: chosen))
        } else {
            try chosen(channel, false)
        }
    }

    private static func configureHTTP1(_ channel: Channel, shared: GatewayShared, scheme: String) throws {
        // Read per connection, so a reload applies to every connection opened after it.
        let configuration = shared.runtime(on: shared.context(for: channel.eventLoop)).configuration
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = maxRequestHeadBytes
        limits.maxHeaderFieldSize = maxRequestHeadBytes
        let handler = ClientConnectionHandler(shared: shared, loop: shared.context(for: channel.eventLoop), scheme: scheme,
                                              timers: ClientTimers(headerTimeout: configuration.headerTimeout.timeAmount,
                                                                   idleTimeout: configuration.idleTimeout.timeAmount,
                                                                   bodyTimeout: configuration.bodyTimeout.timeAmount,
                                                                   writeTimeout: configuration.writeTimeout.timeAmount))
        // No HTTPServerPipelineHandler: the connection handler orders pipelined requests
        // itself without toggling read interest on every request. No response encoder
        // either: the handler writes response bytes and frames each hop itself.
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(RawBytesObserver(owner: handler))
        // Bytes after a WebSocket upgrade head go on to the tunnel when the decoder leaves.
        try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes,
                                                                    informationalResponseStrategy: .drop,
                                                                    limitConfiguration: limits)))
        try sync.addHandler(handler)
    }

    private static func configureHTTP2(_ channel: Channel, shared: GatewayShared, scheme: String) throws {
        let configuration = shared.runtime.configuration
        try channel.pipeline.syncOperations.addHandler(HTTP2Connection(
            shared: shared, loop: shared.context(for: channel.eventLoop), scheme: scheme,
            timers: ClientTimers(headerTimeout: configuration.headerTimeout.timeAmount, idleTimeout: configuration.idleTimeout.timeAmount,
                                 bodyTimeout: configuration.bodyTimeout.timeAmount, writeTimeout: configuration.writeTimeout.timeAmount),
            maxConcurrentStreams: configuration.http2.maxConcurrentStreams))
    }

    /// The replay store logins spend their IDs in (tests reach the shared one through it).
    var storeForTests: GatewayStore { shared.store }

    /// The configuration and flows in force now.
    var runtimeForTests: GatewayRuntime { shared.runtime }

    /// A one-time console link for `organization`, made in this gateway's own store (what
    /// `ssogate admin-link` prints; the demo uses it, its store being its memory).
    public func makeAdminLink(organization: String) async throws -> String {
        let configuration = shared.fileConfiguration
        let now = Int64(shared.clock().timeIntervalSince1970)
        let made = try AdminToken.make(organization: organization, now: now, lifetime: 15 * 60, prefix: "ssgl_")
        try await shared.store.storeAdminLink(made.token)
        return "\(configuration.publicURL)/organizations/\(organization)/settings/sso/login?token=\(made.text)"
    }

    /// The configuration requests are served with now.
    public var configuration: GatewayConfiguration { shared.runtime.configuration }

    /// Swaps in a new configuration for every request that starts from now on (timeouts
    /// for connections opened from now on). The listen address and the logging keys are
    /// fixed at start: a change to them is logged and waits for a restart.
    public func reload(_ configuration: GatewayConfiguration) throws(ConfigError) {
        let old = shared.runtime.configuration
        var fixed: [String] = []
        if old.listen != configuration.listen { fixed.append("listen") }
        if old.workers != configuration.workers { fixed.append("workers") }
        if old.logFormat != configuration.logFormat { fixed.append("log_format") }
        if old.logLevel != configuration.logLevel { fixed.append("log_level") }
        if old.accessLog != configuration.accessLog { fixed.append("access_log") }
        if old.store != configuration.store { fixed.append("store") }
        if old.adminListen != configuration.adminListen { fixed.append("admin_listen") }
        if old.tracing != configuration.tracing { fixed.append("tracing") }
        if !fixed.isEmpty {
            logger.warning("some changed keys apply only after a restart", metadata: ["keys": "\(fixed.joined(separator: ","))"])
        }
        try shared.swap(to: configuration)  // the caller counts a refused reload
        watchCertificates(configuration)
        if old.upstream != configuration.upstream { shared.closeIdleUpstreams() }
        metrics.reloaded(success: true)
    }

    public func recordFailedReload() { metrics.reloaded(success: false) }

    /// Publishes every certificate's expiry as a metric and logs a warning for each that ends
    /// within 30 days (or has ended).
    private func watchCertificates(_ configuration: GatewayConfiguration) {
        let watch = CertificateWatch(configuration)
        metrics.certificates.show(watch)
        for warning in watch.warnings(now: shared.clock()) {
            logger.warning("certificate expiring", metadata: ["detail": "\(warning)"])
        }
    }

    /// Stops accepting, lets in-flight requests finish (keep-alive connections close after
    /// their current response), and force-closes whatever remains after `gracePeriod`.
    public func shutdown(gracePeriod: TimeAmount) async {
        let channel = serverChannel.withLockedValue { value -> Channel? in
            defer { value = nil }
            return value
        }
        try? await channel?.close()
        try? await adminServerChannel.withLockedValue({ value -> Channel? in defer { value = nil }; return value })?.close()
        certificateCheck.withLockedValue { $0?.cancel(); $0 = nil }
        refreshing.withLockedValue { $0?.cancel(); $0 = nil }
        let open = connections.quiesceAll()
        logger.info("draining", metadata: ["connections": "\(open)"])
        let drained = await connections.waitUntilEmpty(within: gracePeriod, on: group.next())
        if !drained {
            let forced = connections.closeAll()
            logger.warning("drain period over; closing remaining connections", metadata: ["connections": "\(forced)"])
        }
        shared.closeIdleUpstreams()
        await shared.stopSweeps()
        await refresher.shutdown()
        await shared.logins.shutdown()
        // Last: the spans of the requests drained above go out before the process ends.
        await shared.tracing?.shutdown()
    }
}

/// The open client connections, for draining.
final class ConnectionRegistry: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    func add(_ channel: Channel, metrics: GatewayMetrics) {
        let id = ObjectIdentifier(channel)
        channels.withLockedValue { $0[id] = channel }
        metrics.connectionOpened()
        channel.closeFuture.whenComplete { [channels] _ in
            channels.withLockedValue { _ = $0.removeValue(forKey: id) }
            metrics.connectionClosed()
        }
    }

    /// Asks every connection to close once idle: idle ones close at once, busy ones after
    /// the response in flight, which carries `Connection: close` when its head is still to come.
    func quiesceAll() -> Int {
        let all = channels.withLockedValue { Array($0.values) }
        for channel in all { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        return all.count
    }

    func closeAll() -> Int {
        let all = channels.withLockedValue { Array($0.values) }
        for channel in all { channel.close(promise: nil) }
        return all.count
    }

    func waitUntilEmpty(within limit: TimeAmount, on loop: EventLoop) async -> Bool {
        let deadline = NIODeadline.now() + limit
        while NIODeadline.now() < deadline {
            if channels.withLockedValue({ $0.isEmpty }) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return channels.withLockedValue { $0.isEmpty }
    }
}
