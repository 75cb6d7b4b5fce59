import Access
import Config
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import Proxy
import SAML
import Sessions
import StateStore
import Synchronization

/// Everything a request needs that a reload may replace, built whole beside the old one
/// and swapped in one step (docs/CODE-STYLE.md "Configuration").
final class GatewayRuntime: Sendable {
    let configuration: GatewayConfiguration
    let upstreamTimeout: TimeAmount
    let trustedProxies: [CIDR]
    /// The SSO flow members use: the file's organizations with the console's active settings.
    let flow: SSOFlow
    /// The flow of test logins with organizations' draft settings; nil when none has a draft.
    let draftFlow: SSOFlow?
    /// What the console saved, by organization (console-managed organizations only).
    let settings: [String: OrganizationSettings]
    /// The gateway's cookies, never forwarded to the upstream nor settable by it.
    let reservedCookies: [String]
    /// The Strict-Transport-Security value every answer carries, when configured.
    let hstsValue: String?
    /// The Host an HTTP/1.0 request without one is forwarded with: `public_url`'s authority.
    let publicHost: String
    /// The listener's TLS context when `tls` is set, made from the certificate and key read
    /// at load: a reload with renewed files applies to every handshake after it.
    let tlsContext: NIOSSLContext?
    /// Signs `X-SSO-Assertion` when `upstream_assertion` is on.
    let minter: AssertionMinter?
    /// Which of `configuration.routes` a request takes.
    let router: Router
    /// TLS to the top-level upstream and to each route's, when `https://`.
    let upstreamTLS: UpstreamTLSContext?
    let routeTLS: [UpstreamTLSContext?]
    /// Why a library refused configured key material (the TLS certificate and key, a JWT
    /// signing key): start and reload then fail, naming the key.
    let problem: ConfigError?

    /// - Parameters:
    ///   - configuration: as loaded from the file.
    ///   - settings: the state store's settings of console-managed organizations, applied
    ///     over the file's.
    init(configuration file: GatewayConfiguration, replayCache: ReplayCache, metadata: [String: IdPMetadata] = [:],
         settings: [String: OrganizationSettings] = [:], revocations: Revocations, tokens: TokenIndex,
         clock: @escaping @Sendable () -> Date) {
        let configuration = file.applying(settings)
        self.configuration = configuration
        self.settings = settings
        self.flow = SSOFlow(configuration: configuration, replayCache: replayCache, metadata: metadata, revocations: revocations,
                            tokens: tokens, clock: clock)
        self.draftFlow = configuration.applyingDrafts(settings).map { drafts, revisions in
            SSOFlow(configuration: drafts, replayCache: replayCache, metadata: metadata, draftRevisions: revisions, revocations: revocations,
                    tokens: tokens, clock: clock)
        }
        self.reservedCookies = [configuration.session.cookieName, configuration.session.cookieName + "_login",
                                configuration.session.cookieName + "_logout"]
        self.upstreamTimeout = configuration.upstreamTimeout.timeAmount
        self.trustedProxies = configuration.trustedProxies
        self.router = Router(configuration.routes)
        self.hstsValue = configuration.publicURLIsHTTPS ? configuration.hsts?.headerValue : nil
        let afterScheme = configuration.publicURL.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        self.publicHost = afterScheme.count > 2 ? String(afterScheme[2]) : "localhost"
        var problems: [ConfigIssue] = []
        do {
            self.tlsContext = try configuration.tls.map { try Self.makeTLSContext($0, http2: configuration.http2.enabled) }
        } catch {
            self.tlsContext = nil
            problems.append(ConfigIssue("tls", "refused by the TLS library: \(error)"))
        }
        do {
            self.minter = try configuration.upstreamAssertion.map {
                try AssertionMinter($0, issuer: configuration.publicURL, clock: clock)
            }
        } catch {
            self.minter = nil
            problems.append(ConfigIssue("upstream_assertion.signing_key_files", "refused by the JWT library: \(error)"))
        }
        func tls(_ endpoint: GatewayConfiguration.Endpoint, _ settings: GatewayConfiguration.UpstreamTLS?, at path: String) -> UpstreamTLSContext? {
            guard endpoint.secure else { return nil }
            do {
                return try UpstreamTLSContext(settings ?? .systemDefaults, host: endpoint.host)
            } catch {
                problems.append(ConfigIssue(path, "refused by the TLS library: \(error)"))
                return nil
            }
        }
        self.upstreamTLS = tls(configuration.upstream, configuration.upstreamTLS, at: "upstream_tls")
        self.routeTLS = configuration.routes.enumerated().map { index, route in tls(route.upstream, route.upstreamTLS, at: "routes[\(index)].upstream_tls") }
        self.problem = problems.isEmpty ? nil : ConfigError(issues: problems)
    }

    /// TLS 1.2 and 1.3 only; ALPN offers `h2` first when HTTP/2 is on.
    private static func makeTLSContext(_ tls: GatewayConfiguration.TLS, http2: Bool) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(tls.certificateChainPEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(tls.privateKeyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }

    /// Where exchanges planned with this runtime go: the route's upstream (`routes[index]`), or
    /// the top-level one.
    func route(_ index: Int?) -> UpstreamRoute {
        UpstreamRoute(endpoint: index.map { configuration.routes[$0].upstream } ?? configuration.upstream, timeout: upstreamTimeout, minter: minter,
                      tls: index.map { routeTLS[$0] } ?? upstreamTLS)
    }

    func isTrusted(peer: [UInt8]?) -> Bool {
        guard let peer, !trustedProxies.isEmpty else { return false }
        return trustedProxies.contains { $0.contains(peer) }
    }
}

/// State shared by every connection of one gateway: the current runtime (swappable),
/// metrics, loggers and the per-loop contexts (upstream pool, deadline sweep).
final class GatewayShared: Sendable {
    private let current: NIOLockedValueBox<GatewayRuntime>
    /// Counts the swaps of `current`: an event loop compares it with the generation of its
    /// own copy of the runtime and takes the lock only when they differ.
    private let generation = Atomic<UInt64>(0)
    private let metadata = NIOLockedValueBox<[String: IdPMetadata]>([:])
    /// The configuration as the file gave it (the runtime's has the console's settings applied).
    private let file: NIOLockedValueBox<GatewayConfiguration>
    /// The store's settings of console-managed organizations, and the version they are at
    /// (-1: not read yet).
    private let stored = NIOLockedValueBox<(version: Int64, settings: [String: OrganizationSettings])>((-1, [:]))
    /// One rebuild at a time: a reload and a metadata refresh must not undo each other.
    private let rebuildLock = NIOLock()
    let metrics: GatewayMetrics
    let logger: Logger
    let accessLogger: Logger?
    let logFormat: GatewayConfiguration.LogFormat
    /// Spent assertion and request IDs, kept across reloads.
    let replayCache: MemoryReplayCache
    /// Where logins spend their IDs and the console keeps settings, audit events and
    /// tokens: memory, SQLite or PostgreSQL (docs/CONTRACT.md "State store").
    let store: GatewayStore
    /// The shared store, when configured: its pool runs while the gateway does.
    let postgres: PostgresStore?
    /// The embedded store, when configured (the default); nil also when its file could not
    /// be opened (then `store` refuses every login: fail closed).
    let sqlite: SQLiteStore?
    let clock: @Sendable () -> Date
    /// Login audit events on their way to the store (`SettingsSync.drainAudit`): bounded, so
    /// a flood of failed logins costs memory it cannot grow; past it events are counted
    /// lost (they are in the log still).
    let auditEvents: AsyncStream<AuditEvent>
    private let auditQueue: AsyncStream<AuditEvent>.Continuation
    /// Sessions ended anywhere (SessionSync keeps it current from the store), kept across
    /// reloads: every flow asks it.
    let revocations = Revocations()
    /// The live access tokens (TokenSync keeps it current from the store, and writes when
    /// each was last used here once a minute).
    let tokens = TokenIndex()
    /// Endings the store did not take (it was down): in force here already, written when
    /// it answers again (SessionSync).
    let pendingEndings = Mutex<[SessionSelector]>([])
    /// Login workers and rates, fixed at start.
    let logins: LoginGuard
    /// OpenTelemetry spans, when `tracing` is configured; fixed at start.
    let tracing: GatewayTracing?
    private let loops: [ObjectIdentifier: LoopContextBox]

    init(configuration: GatewayConfiguration, metrics: GatewayMetrics, logger: Logger, accessLogger: Logger?,
         accessLogSink: AccessLogSink?, group: EventLoopGroup, clock: @escaping @Sendable () -> Date, tracing: GatewayTracing? = nil) {
        let replayCache = MemoryReplayCache()
        self.replayCache = replayCache
        switch configuration.store {
        case .memory:
            self.store = MemoryStore(replay: replayCache)
            self.postgres = nil
            self.sqlite = nil
        case .sqlite(let path):
            self.postgres = nil
            do {
                let store = try SQLiteStore(path: path, logger: logger)
                self.sqlite = store
                self.store = store
                logger.info("state store ready", metadata: ["store": "sqlite", "path": "\(path)"])
            } catch {
                // Sessions keep flowing; logins answer 503 until a restart finds the file.
                logger.critical("state store cannot be opened; logins fail closed (503 state_store_unavailable)",
                                metadata: ["store": "sqlite", "error": "\(error)"])
                self.sqlite = nil
                self.store = UnavailableStore()
            }
        case .postgres(let settings):
            let store = PostgresStore(settings, group: group, logger: logger)
            self.store = store
            self.postgres = store
            self.sqlite = nil
        }
        self.file = NIOLockedValueBox(configuration)
        (auditEvents, auditQueue) = AsyncStream.makeStream(of: AuditEvent.self, bufferingPolicy: .bufferingOldest(10_000))
        self.clock = clock
        self.logins = LoginGuard(configuration.logins)
        self.tracing = tracing
        let runtime = GatewayRuntime(configuration: configuration, replayCache: replayCache, revocations: revocations, tokens: tokens, clock: clock)
        self.current = NIOLockedValueBox(runtime)
        self.metrics = metrics
        self.logger = logger
        self.accessLogger = accessLogger
        self.logFormat = runtime.configuration.logFormat
        var loops: [ObjectIdentifier: LoopContextBox] = [:]
        let count = Array(group.makeIterator()).count
        for loop in group.makeIterator() {
            loops[ObjectIdentifier(loop)] = LoopContextBox(LoopContext(eventLoop: loop, loops: count, accessSink: accessLogSink,
                                                                   latency: metrics.upstreamLatency,
                                                                   organizationRequests: metrics.organizationRequests))
        }
        self.loops = loops
    }

    var runtime: GatewayRuntime { current.withLockedValue { $0 } }

    /// The running runtime as requests on `loop` see it: the loop's copy, refreshed after a
    /// swap. A request that races a swap may still get the runtime before it; the next gets
    /// the new one (the runtime is stored before the generation moves).
    func runtime(on loop: LoopContext) -> GatewayRuntime {
        loop.runtime(generation: generation.load(ordering: .acquiring)) { runtime }
    }

    private func install(_ runtime: GatewayRuntime) {
        current.withLockedValue { $0 = runtime }
        generation.add(1, ordering: .releasing)
    }

    /// Installs a runtime for `configuration`, or throws and keeps the running one.
    func swap(to configuration: GatewayConfiguration) throws(ConfigError) {
        let problem: ConfigError? = rebuildLock.withLock {
            let runtime = GatewayRuntime(configuration: configuration, replayCache: replayCache,
                                         metadata: metadata.withLockedValue { $0 }, settings: stored.withLockedValue { $0.settings },
                                         revocations: revocations, tokens: tokens, clock: clock)
            if let problem = runtime.problem { return problem }
            file.withLockedValue { $0 = configuration }
            install(runtime)
            return nil
        }
        if let problem { throw problem }
    }

    /// When each refusal was last audited (by session, organization, reason and group), so
    /// a page whose every asset is refused is one audit event a minute, not one per request.
    private let refusalsAudited = Mutex<[String: Int64]>([:])

    /// An access-policy refusal: counted always, audited once a minute per member and kind.
    func audit(_ refusal: AccessRefusal, peer: String?, requestID: String) {
        metrics.accessRefused(organization: refusal.organization, reason: refusal.refusal.rawValue)
        let now = Int64(clock().timeIntervalSince1970)
        let key = [refusal.session, refusal.organization, refusal.refusal.rawValue, refusal.resourceGroup ?? ""].joined(separator: "\u{0}")
        let fresh = refusalsAudited.withLock { seen in
            if seen[key].map({ now - $0 < 60 }) == true { return false }
            if seen.count >= 10_000 { seen.removeAll() }
            seen[key] = now
            return true
        }
        guard fresh else { return }
        audit(AuditEvent(time: now, action: "access.denied", organization: refusal.organization, actor: refusal.subject, result: "failure",
                         reason: refusal.refusal.rawValue, subject: refusal.email ?? refusal.subject, ip: peer, requestID: requestID))
    }

    /// Queues an audit event for the store, and logs it now.
    func audit(_ event: AuditEvent) {
        SettingsSync.log(self, event)
        if case .dropped = auditQueue.yield(event) { metrics.auditDropped() }
    }

    /// The organizations whose IdP metadata has been loaded (readiness).
    var metadataLoaded: Set<String> { metadata.withLockedValue { Set($0.keys) } }

    /// The configuration as the file gave it, without the console's settings.
    var fileConfiguration: GatewayConfiguration { file.withLockedValue { $0 } }

    /// The settings version the running runtime was built with (-1 before the first read).
    var settingsVersion: Int64 { stored.withLockedValue { $0.version } }

    /// Installs a runtime with the store's settings at `version`, unless the running one
    /// already has them (several readers may race; the newest version wins).
    func apply(settings: [String: OrganizationSettings], version: Int64) {
        rebuildLock.withLock {
            let (current, running) = stored.withLockedValue { ($0.version, $0.settings) }
            guard version > current else { return }
            stored.withLockedValue { $0 = (version, settings) }
            // The same settings at a new version (the first read, another organization's
            // change): the running runtime, its caches and sessions stay.
            guard settings != running else { return }
            // Settings of organizations the file no longer manages in the console are kept
            // in the store but never applied (`applying` looks at console-managed ones only).
            let runtime = GatewayRuntime(configuration: file.withLockedValue { $0 }, replayCache: replayCache,
                                         metadata: metadata.withLockedValue { $0 }, settings: settings, revocations: revocations, tokens: tokens, clock: clock)
            // The file's key material was accepted already; only organizations changed.
            if runtime.problem == nil { install(runtime) }
        }
    }

    /// IdP metadata fetched from `metadata_url`, per organization.
    var idpMetadata: [String: IdPMetadata] { metadata.withLockedValue { $0 } }

    /// Replaces one organization's fetched metadata (nil drops it) and rebuilds the runtime
    /// around the configuration in force.
    func setMetadata(_ fetched: IdPMetadata?, for organization: String) {
        rebuildLock.withLock {
            metadata.withLockedValue { $0[organization] = fetched }
            let runtime = GatewayRuntime(configuration: file.withLockedValue { $0 }, replayCache: replayCache,
                                         metadata: metadata.withLockedValue { $0 }, settings: stored.withLockedValue { $0.settings },
                                         revocations: revocations, tokens: tokens, clock: clock)
            // The configuration's key material was accepted already; only metadata changed.
            if runtime.problem == nil { install(runtime) }
        }
    }

    /// The context of `loop`. Each context is only used on its own loop.
    func context(for loop: EventLoop) -> LoopContext { loops[ObjectIdentifier(loop)]!.context }

    func closeIdleUpstreams() {
        for box in loops.values {
            box.context.eventLoop.execute { box.context.pool.closeAll() }
        }
    }

    /// Stops every loop's sweep, once each loop has written its gathered access lines.
    func stopSweeps() async {
        for box in loops.values {
            try? await box.context.eventLoop.submit { box.context.stop() }.get()
        }
    }
}

/// Carries a loop-confined context across the Sendable boundary of the shared state;
/// every use happens on `context.eventLoop` (checked by `preconditionInEventLoop`).
final class LoopContextBox: @unchecked Sendable {
    let context: LoopContext
    init(_ context: LoopContext) { self.context = context }
}

extension Duration {
    var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
