import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus
import Proxy

/// The gateway's metrics, recorded through swift-metrics into a Prometheus registry the
/// gateway owns (no global bootstrap, so several gateways can share a test process).
/// Every handle is made once here; the request path only increments.
public final class GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let requestsByClass: [CoreMetrics.Counter]
    /// Per-loop shards, added up at a scrape (no lock when a request records).
    let upstreamLatency = LatencyHistogram()
    /// Per-loop shards too: the requests that concerned each organization.
    let organizationRequests = OrganizationRequests()
    private let upstreamFailures: [UpstreamFailure: CoreMetrics.Counter]
    private let connections: CoreMetrics.Meter
    private let reloads: [Bool: CoreMetrics.Counter]
    private let factory: PrometheusMetricsFactory
    private let logins = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    private let http2Goaways = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    private let metadataFetches = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    private let loginRefusals = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    private let clientTimeouts = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    private let auditLost = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    private let accessRefusals = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    private let forwardAuth = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    let certificates: CertificateGauges
    /// Session endings waiting for the state store (SessionSync).
    private let endingsPending: Prometheus.Gauge
    /// Sessions ended, by how (`logout`, `everywhere`, `revoke`, `slo`, `disabled`).
    private let sessionEndings = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])

    public typealias UpstreamFailure = UpstreamFailureKind

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = LatencyHistogram.bounds
        self.registry = registry
        self.certificates = CertificateGauges(registry: registry)
        endingsPending = registry.makeGauge(name: "ssogate_session_endings_pending", labels: [])
        self.factory = factory
        requestsByClass = (1...5).map {
            CoreMetrics.Counter(label: "ssogate_http_requests_total", dimensions: [("class", "\($0)xx")], factory: factory)
        }
        upstreamFailures = Dictionary(uniqueKeysWithValues: UpstreamFailure.allCases.map {
            ($0, CoreMetrics.Counter(label: "ssogate_upstream_failures_total", dimensions: [("reason", $0.rawValue)], factory: factory))
        })
        connections = CoreMetrics.Meter(label: "ssogate_open_connections", factory: factory)
        reloads = [
            true: CoreMetrics.Counter(label: "ssogate_config_reloads_total", dimensions: [("result", "success")], factory: factory),
            false: CoreMetrics.Counter(label: "ssogate_config_reloads_total", dimensions: [("result", "failure")], factory: factory),
        ]
    }

    func requestFinished(status: Int) {
        let index = status / 100 - 1
        if requestsByClass.indices.contains(index) { requestsByClass[index].increment() }
    }


    func upstreamFailed(_ reason: UpstreamFailure) { upstreamFailures[reason]?.increment() }
    func connectionOpened() { connections.increment() }
    func connectionClosed() { connections.decrement() }
    func reloaded(success: Bool) { reloads[success]?.increment() }

    /// Logins by outcome: `success`, `test_success` or the reason code. Reason codes are a
    /// fixed, small set, so the label cannot grow without bound.
    /// A login's end, per organization (a configured name, or `unknown`: the path's name is
    /// the client's, and must not make a label of its own).
    func loginFinished(organization: String, result: String) {
        counter(logins, "ssogate_logins_total", ("organization", organization), ("result", result)).increment()
    }
    /// A login start or ACS post turned away before any work: `login_rate_limited` or
    /// `login_busy`, per endpoint (`start`, `acs`).
    func loginTurnedAway(endpoint: String, reason: String) {
        counter(loginRefusals, "ssogate_login_refusals_total", ("endpoint", endpoint), ("reason", reason)).increment()
    }

    /// An HTTP/2 connection the gateway ended with GOAWAY (`flood`, `bad_preface`, `protocol_error`).
    /// A client connection (or HTTP/2 stream) ended by one of its deadlines: `header_timeout`,
    /// `idle_timeout`, `body_timeout`, `write_timeout`.
    /// An audit event that did not reach the state store (it is in the log still): the
    /// store failed, or the queue of login events was full.
    func sessionEndingsPending(_ count: Int) { endingsPending.set(Double(count)) }
    func sessionsEnded(_ count: Int, how: String) {
        counter(sessionEndings, "ssogate_sessions_ended_total", ("how", how)).increment(by: Int64(count))
    }
    /// A request the access policy refused, by reason code, per organization.
    func accessRefused(organization: String, reason: String) {
        counter(accessRefusals, "ssogate_access_refusals_total", ("organization", organization), ("reason", reason)).increment()
    }
    /// A forward-auth answer: `allowed`, `anonymous`, `login`, `unauthorized`, `refused`, `bad_request`.
    func forwardAuthDecided(result: String) {
        counter(forwardAuth, "ssogate_forward_auth_total", ("result", result)).increment()
    }
    func auditDropped() { counter(auditLost, "ssogate_audit_events_lost_total").increment() }
    func clientTimedOut(reason: String) { counter(clientTimeouts, "ssogate_client_timeouts_total", ("reason", reason)).increment() }
    func http2Terminated(reason: String) { counter(http2Goaways, "ssogate_http2_goaways_total", ("reason", reason)).increment() }

    /// One IdP metadata fetch (`success`, `failure`, `expired`), per organization.
    func metadataFetched(organization: String, result: String) {
        counter(metadataFetches, "ssogate_idp_metadata_fetches_total", ("organization", organization), ("result", result)).increment()
    }

    /// A counter per label values, made on first use (the values are a small set).
    private func counter(_ cache: NIOLockedValueBox<[String: CoreMetrics.Counter]>, _ label: String,
                         _ dimensions: (String, String)...) -> CoreMetrics.Counter {
        let key = dimensions.map(\.1).joined(separator: "\u{0}")
        return cache.withLockedValue { counters in
            if let existing = counters[key] { return existing }
            let made = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
            counters[key] = made
            return made
        }
    }

    func exposition() -> [UInt8] {
        var out = registry.emitToBuffer()
        upstreamLatency.emit(into: &out)
        organizationRequests.emit(into: &out)
        return out
    }
}
