#if canImport(Glibc)
import Glibc
#endif
import Config
import Foundation
import HTTPWire
import Logging
import NIOConcurrencyHelpers
import NIOHTTP1
import OTel
import ServiceLifecycle
import Tracing

/// OpenTelemetry spans (README "Observability"), exported over OTLP/HTTP by
/// swift-otel's batch processor, off unless `tracing` is configured. Built without the
/// global bootstrap: the gateway keeps its own logging and metrics, and several gateways
/// (tests) may run in one process.
///
/// Spans: `{method}` (server) from a request's head to its access line, its upstream
/// exchange (client; its id is the `traceparent` parent the upstream sees), under an ACS
/// post `saml.validate` and the state store's `store.record_session` and `store.spend`, and
/// under the console, API, token, logout and Single Logout endpoints each store call
/// (`StoreCalls`).
/// A trusted proxy's `traceparent` is the parent; anyone else's is ignored (a new trace).
///
/// Sampling is decided here, before swift-otel sees the request: a trusted parent's sampled
/// flag, else a draw against `sample_ratio`. A request left out costs one draw: measured,
/// an unsampled swift-otel span pair still cost about 40,000 instructions (ids, locks,
/// allocations), a third of the whole request. It sends the upstream a trusted parent's
/// `traceparent` as it came, and none of its own.
final class GatewayTracing: Sendable {
    let tracer: any Tracer
    private let group: ServiceGroup
    private let running = NIOLockedValueBox<Task<Void, Never>?>(nil)
    /// `sample_ratio` as a threshold on a 64-bit draw (`UInt64.max`: every request).
    private let threshold: UInt64

    private init(tracer: any Tracer, group: ServiceGroup, ratio: Double) {
        self.tracer = tracer
        self.group = group
        threshold = ratio >= 1 ? .max : UInt64(ratio * 0x1p64)
    }

    /// The tracer and its exporter for `settings`; nil (logged) when swift-otel refuses them.
    static func make(_ settings: GatewayConfiguration.Tracing, logger: Logger) -> GatewayTracing? {
        // The YAML is the whole configuration: swift-otel would let OTEL_* variables override
        // it (and stop the process on some values), so they are set aside, named in the log.
        let ignored = ProcessInfo.processInfo.environment.keys.filter { $0.hasPrefix("OTEL_") }.sorted()
        if !ignored.isEmpty {
            logger.warning("tracing: OTEL_* environment variables are ignored; the tracing section configures it",
                           metadata: ["ignored": "\(ignored.joined(separator: ","))"])
            for name in ignored { unsetenv(name) }
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.serviceName
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        configuration.propagators = [.traceContext]
        // Every span swift-otel is asked for was already chosen (see above).
        configuration.traces.sampler = .parentBasedAlwaysOn
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        configuration.traces.batchSpanProcessor.exportTimeout = .seconds(10)
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.endpoint = settings.endpoint
        configuration.traces.otlpExporter.protocol = settings.format == .json ? .httpJSON : .httpProtobuf
        configuration.traces.otlpExporter.timeout = .seconds(5)
        do {
            let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
            // A failing exporter never takes the gateway down with it.
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore)],
                gracefulShutdownSignals: [], cancellationSignals: [], logger: logger))
            return GatewayTracing(tracer: tracer, group: group, ratio: settings.sampleRatio)
        } catch {
            logger.error("tracing is off: the exporter could not be made", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Runs the batch processor and exporter until `shutdown`.
    func start() {
        let group = self.group
        running.withLockedValue { $0 = Task { try? await group.run() } }
    }

    /// Exports what is batched, then stops.
    func shutdown() async {
        await group.triggerGracefulShutdown()
        await running.withLockedValue { $0 }?.value
    }

    /// The server span of a request, its parent a trusted proxy's `traceparent`; nil when the
    /// request is not sampled: its parent's flag says so, or, without one, `draw` (a uniform
    /// 64-bit value) is past the ratio.
    func startRequest(_ head: HTTPRequestHead, trusted: Bool, requestID: String, draw: UInt64) -> RequestTrace? {
        let parent = trusted ? head.headers.first(name: "traceparent") : nil
        if let sampled = parent.flatMap(Self.sampledFlag) {
            guard sampled else { return nil }
        } else if threshold != .max, draw >= threshold {
            return nil
        }
        var context = ServiceContext.topLevel
        if let parent {
            var carrier = [("traceparent", parent)]
            if let state = head.headers.first(name: "tracestate") { carrier.append(("tracestate", state)) }
            tracer.extract(carrier, into: &context, using: PairsExtractor())
        }
        let span = tracer.startSpan(head.method.rawValue, context: context, ofKind: .server)
        if span.isRecording {
            span.updateAttributes { attributes in
                attributes["http.request.method"] = head.method.rawValue
                attributes["url.path"] = String(pathOnly(head.uri))
                attributes["ssogate.request_id"] = requestID
            }
        }
        return RequestTrace(tracer: tracer, span: span)
    }

    /// The sampled flag of a W3C `traceparent` (`00-` 32 hex `-` 16 hex `-` 2 hex flags);
    /// nil when it is not one (then it is no parent: a new trace, drawn like any).
    static func sampledFlag(_ value: String) -> Bool? {
        let bytes = Array(value.utf8)
        guard bytes.count == 55, bytes[0] == UInt8(ascii: "0"), bytes[1] == UInt8(ascii: "0"),
              bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-"),
              let flags = UInt8(String(decoding: bytes[53...], as: UTF8.self), radix: 16) else { return nil }
        return flags & 1 == 1
    }
}

/// One request's spans; the loop that serves the request is the only one to touch it. A
/// span still open when this goes (a path that never logged) is ended then: swift-otel keeps
/// every open span until it ends.
final class RequestTrace {
    let tracer: any Tracer
    let span: any Span
    private var upstream: (any Span)?
    private var ended = false

    init(tracer: any Tracer, span: any Span) {
        self.tracer = tracer
        self.span = span
    }

    /// Where work on another thread hangs its spans (the ACS's validation and store calls).
    var parent: SpanParent { SpanParent(tracer: tracer, context: span.context) }

    /// Starts the upstream exchange's span; the `traceparent` and `tracestate` the upstream
    /// gets, which name it as the parent.
    func startUpstream(method: HTTPMethod, host: String, port: Int) -> (parent: String?, state: String?) {
        let span = tracer.startSpan(method.rawValue, context: self.span.context, ofKind: .client)
        if span.isRecording {
            span.updateAttributes { attributes in
                attributes["http.request.method"] = method.rawValue
                attributes["server.address"] = host
                attributes["server.port"] = port
            }
        }
        upstream = span
        var carrier: [(String, String)] = []
        tracer.inject(span.context, into: &carrier, using: PairsInjector())
        return (carrier.first { $0.0 == "traceparent" }?.1, carrier.first { $0.0 == "tracestate" }?.1)
    }

    /// Ends the spans with what the access line says.
    func end(status: Int, label: RequestLabel, upstreamAnswered: Bool) {
        guard !ended else { return }
        ended = true
        if let upstream {
            if upstreamAnswered, upstream.isRecording { upstream.attributes["http.response.status_code"] = status }
            if !upstreamAnswered { upstream.setStatus(SpanStatus(code: .error, message: "no answer from the upstream")) }
            upstream.end()
        }
        if span.isRecording {
            span.updateAttributes { attributes in
                attributes["http.response.status_code"] = status
                if let organization = label.organization { attributes["ssogate.organization"] = organization }
                if let subject = label.subject { attributes["user.id"] = subject }
                if let token = label.token { attributes["ssogate.token_id"] = token }
            }
            if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        }
        span.end()
    }

    deinit {
        guard !ended else { return }
        upstream?.end()
        span.end()
    }
}

/// A span's context and tracer, to start its children from any thread.
struct SpanParent: Sendable {
    let tracer: any Tracer
    let context: ServiceContext

    func start(_ name: String) -> any Span {
        tracer.startSpan(name, context: context, ofKind: .internal)
    }

    /// A child span for code that does not see the tracing API.
    func begin(_ name: String) -> ChildSpan { ChildSpan(span: start(name)) }

    /// `work` under a child span named `name`, ended when it returns.
    func measure<T>(_ name: String, _ work: () async throws -> T) async rethrows -> T {
        let span = start(name)
        defer { span.end() }
        do {
            return try await work()
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }
}

/// The span the state-store calls of a request hang under, for the task that answers it
/// (the console, the API, token pages, logout, Single Logout): set by `RequestPlanner` with
/// `$parent.withValue`, read at each call. Calls made outside a traced request (the
/// background polls) make no span.
enum StoreCalls {
    @TaskLocal static var parent: SpanParent?

    /// `work`, a state-store call, under a span named `store.{name}` when the task answers a
    /// traced request.
    static func traced<T>(_ name: String, _ work: () async throws -> T) async rethrows -> T {
        guard let parent else { return try await work() }
        return try await parent.measure("store." + name, work)
    }
}

/// An open child span, ended by `finish`.
struct ChildSpan: Sendable {
    let span: any Span

    func set(_ key: String, _ value: String) {
        if span.isRecording { span.attributes[key] = value }
    }

    func finish() { span.end() }
}

struct PairsExtractor: Extractor {
    func extract(key: String, from carrier: [(String, String)]) -> String? {
        carrier.first { $0.0 == key }?.1
    }
}

struct PairsInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [(String, String)]) {
        carrier.append((key, value))
    }
}
