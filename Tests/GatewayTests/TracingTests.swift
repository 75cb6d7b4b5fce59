import Config
import Foundation
@testable import Gateway
import TestFixtures
import TestSupport
import Testing

/// Tracing (README "Observability") against a real OTLP/HTTP receiver on loopback
/// (Tests/Tracing/otlp_receiver.py decodes the export with the OpenTelemetry project's own
/// protobuf definitions): a trusted proxy's `traceparent` is the parent of the request's
/// span, the upstream exchange's span is the parent the upstream is told, an ACS post has
/// its validation and store calls as children (and an API request its store calls), a
/// client's `traceparent` starts nothing, and
/// a request sampling leaves out makes no span.
@Suite("Tracing", .serialized)
struct TracingTests {
    typealias API = SettingsAPITests

    /// The receiver process and the file it writes a JSON line per span to.
    final class Receiver: Sendable {
        let process: Process
        let port: Int
        let out: String

        init() throws {
            out = NSTemporaryDirectory() + "otlp-\(UUID().uuidString).jsonl"
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", Fixture.repository.appendingPathComponent("Tests/Tracing/otlp_receiver.py").path, "--out", out]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            var line = Data()
            while !line.contains(0x0A) {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
            }
            let text = String(decoding: line, as: UTF8.self)
            guard text.hasPrefix("listening "), let port = Int(text.dropFirst("listening ".count).prefix { $0.isNumber }) else {
                process.terminate()
                throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "the OTLP receiver did not start: \(text)"])
            }
            self.port = port
        }

        var spans: [[String: Any]] {
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }

        func stop() {
            // SIGKILL: a child of the test process starts with its blocked signals (SIGTERM among them).
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: out)
        }
    }

    static func yaml(_ receiver: Receiver, _ more: String = "") -> String {
        "tracing: {otlp_endpoint: \"http://127.0.0.1:\(receiver.port)/v1/traces\", service_name: ssogate-test}\n" + more
    }

    /// Stops the gateway (the exporter sends what is batched as it stops), then the spans.
    static func exported(_ g: SSOFlowTests.Gateway, _ receiver: Receiver) async -> [[String: Any]] {
        await SSOFlowTests().stop(g)
        return receiver.spans
    }

    @Test func aTrustedProxysTraceGoesOnThroughTheRequestAndTheUpstreamExchange() async throws {
        let receiver = try Receiver()
        defer { receiver.stop() }
        let g = try await SSOFlowTests.start(extra: Self.yaml(receiver, ForwardAuthTests.trusted))
        let cookie = try await SessionEndTests.logIn(g)
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let r = try await API.request(g, "GET /acme/echo HTTP/1.1\r\nHost: hub.example.test\r\nCookie: \(cookie)\r\n"
                                         + "traceparent: \(incoming)\r\ntracestate: vendor=abc\r\n\r\n")
        #expect(r.status == 200)
        let seen = try #require(g.upstream.requests.last)
        let upstreamParent = try #require(seen.values("traceparent").first).split(separator: "-").map(String.init)
        #expect(upstreamParent.count == 4 && upstreamParent[1] == "4bf92f3577b34da6a3ce929d0e0e4736", "the same trace")
        #expect(upstreamParent[2] != "00f067aa0ba902b7" && upstreamParent[3] == "01", "a span of the gateway's as the parent")
        #expect(seen.values("tracestate") == ["vendor=abc"])

        let spans = await Self.exported(g, receiver)
        let trace = spans.filter { $0["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736" }
        let server = try #require(trace.first { $0["kind"] as? Int == 2 }, "\(spans)")
        #expect(server["parent_span_id"] as? String == "00f067aa0ba902b7")
        #expect(server["name"] as? String == "GET" && server["service"] as? String == "ssogate-test")
        let attributes = try #require(server["attributes"] as? [String: Any])
        #expect(attributes["url.path"] as? String == "/acme/echo")
        #expect(attributes["http.response.status_code"] as? Int == 200)
        #expect(attributes["ssogate.organization"] as? String == "acme" && attributes["user.id"] as? String == "alice@example.test")
        #expect(attributes["ssogate.request_id"] as? String == seen.values("x-request-id").first)
        let client = try #require(trace.first { $0["kind"] as? Int == 3 })
        #expect(client["parent_span_id"] as? String == server["span_id"] as? String)
        #expect(client["span_id"] as? String == upstreamParent[2], "the upstream's parent is the exchange's span")
        #expect((client["attributes"] as? [String: Any])?["server.port"] as? Int == g.upstream.port)
    }

    @Test func anACSPostHasItsValidationAndStoreCallsAsChildren() async throws {
        let receiver = try Receiver()
        defer { receiver.stop() }
        let directory = NSTemporaryDirectory() + "trace-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let g = try await SSOFlowTests.start(extra: Self.yaml(receiver, "store: \"sqlite:\(directory)/state.db\""))
        _ = try await SessionEndTests.logIn(g)
        let spans = await Self.exported(g, receiver)
        let post = try #require(spans.first { ($0["attributes"] as? [String: Any])?["url.path"] as? String == "/organizations/acme/saml/consume" },
                                "\(spans)")
        let children = spans.filter { $0["parent_span_id"] as? String == post["span_id"] as? String }
        let names = Set(children.compactMap { $0["name"] as? String })
        #expect(names == ["saml.validate", "store.record_session", "store.spend"], "\(children)")
        let validate = try #require(children.first { $0["name"] as? String == "saml.validate" })
        #expect(validate["trace_id"] as? String == post["trace_id"] as? String)
    }

    @Test func theStoreCallsOfAnAPIRequestAreChildrenOfItsSpan() async throws {
        let receiver = try Receiver()
        defer { receiver.stop() }
        let g = try await SSOFlowTests.start(extra: Self.yaml(receiver))
        let cookie = try await SessionEndTests.logIn(g)
        #expect(try await TokenTests.make(g, cookie: cookie).status == 201)
        let spans = await Self.exported(g, receiver)
        let post = try #require(spans.first { ($0["attributes"] as? [String: Any])?["url.path"] as? String == "/api/organizations/acme/tokens" },
                                "\(spans)")
        let children = spans.filter { $0["parent_span_id"] as? String == post["span_id"] as? String }.compactMap { $0["name"] as? String }
        #expect(children.contains("store.create_token"), "\(children)")
    }

    @Test func aClientsTraceparentStartsNothingAndHealthChecksMakeNoSpans() async throws {
        let receiver = try Receiver()
        defer { receiver.stop() }
        let g = try await SSOFlowTests.start(extra: Self.yaml(receiver))
        _ = try await API.request(g, "GET /echo HTTP/1.1\r\nHost: h\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n")
        let sent = try #require(g.upstream.requests.last?.values("traceparent").first)
        #expect(!sent.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "a new trace, not the client's")
        _ = try await API.request(g, "GET /_ssogate/healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        let spans = await Self.exported(g, receiver)
        #expect(!spans.contains { $0["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736" })
        #expect(spans.contains { $0["trace_id"] as? String == sent.split(separator: "-")[1].description && $0["parent_span_id"] as? String == "" })
        #expect(!spans.contains { ($0["attributes"] as? [String: Any])?["url.path"] as? String == "/_ssogate/healthz" })
    }

    @Test func aRequestLeftOutBySamplingMakesNoSpanAndATrustedParentsFlagDecidesForItsOwn() async throws {
        let receiver = try Receiver()
        defer { receiver.stop() }
        let g = try await SSOFlowTests.start(extra: "tracing: {otlp_endpoint: \"http://127.0.0.1:\(receiver.port)/v1/traces\", sample_ratio: 0}\n"
                                                    + ForwardAuthTests.trusted)
        // No parent, ratio 0: no span, and no traceparent of the gateway's upstream.
        _ = try await API.request(g, "GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(g.upstream.requests.last?.values("traceparent") == [])
        // A trusted parent that was not sampled: no span; its traceparent passes as it came.
        let unsampled = "00-1111111111111111aaaaaaaaaaaaaaaa-2222222222222222-00"
        _ = try await API.request(g, "GET /echo HTTP/1.1\r\nHost: h\r\ntraceparent: \(unsampled)\r\n\r\n")
        #expect(g.upstream.requests.last?.values("traceparent") == [unsampled])
        // A trusted parent that was sampled: traced whatever the ratio.
        let sampled = "00-3333333333333333bbbbbbbbbbbbbbbb-4444444444444444-01"
        _ = try await API.request(g, "GET /echo HTTP/1.1\r\nHost: h\r\ntraceparent: \(sampled)\r\n\r\n")
        let sent = try #require(g.upstream.requests.last?.values("traceparent").first)
        #expect(sent.hasPrefix("00-3333333333333333bbbbbbbbbbbbbbbb-") && !sent.contains("4444444444444444"))
        let spans = await Self.exported(g, receiver)
        #expect(Set(spans.compactMap { $0["trace_id"] as? String }) == ["3333333333333333bbbbbbbbbbbbbbbb"], "\(spans)")
        #expect(spans.count == 2, "the request's span and its exchange's")
    }

    @Test func theSampledFlagIsReadFromAWellFormedTraceparentOnly() {
        #expect(GatewayTracing.sampledFlag("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == true)
        #expect(GatewayTracing.sampledFlag("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00") == false)
        #expect(GatewayTracing.sampledFlag("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03") == true)
        #expect(GatewayTracing.sampledFlag("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == nil)
        #expect(GatewayTracing.sampledFlag("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x") == nil)
        #expect(GatewayTracing.sampledFlag("garbage") == nil)
    }

    @Test func aReloadSaysThatTracingAndTheAdminListenerChangeOnlyAtARestart() async throws {
        let h = try await Harness.start(upstreamPort: 9)
        let yaml = Harness.yaml(upstreamPort: 9, extra: "tracing: {otlp_endpoint: \"http://127.0.0.1:9/v1/traces\"}\nadmin_listen: \"127.0.0.1:0\"")
        try h.server.reload(try ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: "."))
        let warning = h.logs.all.first { $0.contains("apply only after a restart") }
        #expect(warning?.contains("admin_listen") == true && warning?.contains("tracing") == true, "\(h.logs.all)")
        await h.stop()
    }

    @Test func withoutTracingATrustedProxysTraceparentPassesAsItCame() async throws {
        let g = try await SSOFlowTests.start(extra: ForwardAuthTests.trusted)
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        _ = try await API.request(g, "GET /echo HTTP/1.1\r\nHost: h\r\ntraceparent: \(incoming)\r\n\r\n")
        #expect(g.upstream.requests.last?.values("traceparent") == [incoming])
        await SSOFlowTests().stop(g)
    }
}
