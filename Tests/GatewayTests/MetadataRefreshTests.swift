import Config
import CryptoCore
import Foundation
@testable import Gateway
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
@testable import SAML
import TestFixtures
import TestSupport
import Testing
import XMLCore

/// IdP metadata by URL: a metadata server on loopback rotates the IdP's certificate while
/// the gateway runs, and logins keep working across the rotation without a restart. A
/// failed fetch keeps the last good metadata; metadata past its `validUntil` is refused.
@Suite("IdP metadata refresh", .serialized)
struct MetadataRefreshTests {
    static let oldIdP = (key: SSOFlowTests.fixture("rsa-2048.key"), certificate: SSOFlowTests.fixture("rsa-2048.crt"))
    static let newIdP = (key: saml("keys/idp-rsa.key"), certificate: saml("keys/idp-rsa.crt"))

    static func saml(_ name: String) -> String { Fixture.path("saml/\(name)") }

    static func metadata(certificates: [String], validUntil: String? = nil) throws -> String {
        let keys = try certificates.map { path in
            let der = try X509Certificate.parseAll(pem: String(contentsOfFile: path, encoding: .utf8))[0].der
            return """
            <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>\
            <ds:X509Certificate>\(Data(der).base64EncodedString())</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
            """
        }.joined()
        return """
        <?xml version="1.0"?>
        <md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="http://www.okta.com/exk-test"\
        \(validUntil.map { " validUntil=\"\($0)\"" } ?? "") cacheDuration="PT1S">
        <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\(keys)
        <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/okta/sso"/>
        </md:IDPSSODescriptor></md:EntityDescriptor>
        """
    }

    /// A full login whose response is signed by `signer`; the reason code or "success".
    static func login(_ g: SSOFlowTests.Gateway, signer: (key: String, certificate: String), assertion: String) throws -> String {
        let start = try g.harness.request("GET /organizations/acme/sso?return_to=/acme/x HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
        guard start.status == 302, let location = start.header("location"), let login = SSOFlowTests.cookie(start, "ssogate_session_login") else {
            return "no redirect (\(start.status) \(start.text))"
        }
        #expect(location.hasPrefix("https://idp.example.test/okta/sso?"), "the SSO URL comes from the metadata: \(location)")
        let response = try SSOFlowTests.samlResponse(inResponseTo: SSOFlowTests.requestID(in: location), assertionID: assertion, signer: signer)
        let done = try SSOFlowTests.post(g, form: ["SAMLResponse": response], cookies: ["ssogate_session_login=" + SSOFlowTests.value(login)],
                                         accept: "application/json")
        if done.status == 303 { return "success" }
        return (try? JSONDecoder().decode([String: String].self, from: Data(done.text.utf8)))?["error"] ?? done.text
    }

    /// Waits until the metadata server has been asked `more` more times and the gateway had a moment to apply it.
    static func waitForFetches(_ server: DocumentServer, more: Int = 1) async throws {
        let target = server.requests + more
        for _ in 0..<100 where server.requests < target { try await Task.sleep(for: .milliseconds(100)) }
        #expect(server.requests >= target, "the gateway stopped fetching the metadata")
        try await Task.sleep(for: .milliseconds(200))
    }

    @Test func aCertificateRotatedInTheMetadataIsTrustedWithoutARestart() async throws {
        XMLLibrary.initialize()
        let server = try await DocumentServer.start(body: try Self.metadata(certificates: [Self.oldIdP.certificate]))
        let upstream = try await TestUpstream.start()
        // No sign_on_url and no certificate in the file: both come from the metadata.
        let yaml = """
        listen: "127.0.0.1:0"
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:\(upstream.port)"
        session: {secrets: ["0123456789abcdef0123456789abcdef-test"]}
        store: memory
        protected_paths: ["/{org}/"]
        organizations:
          - name: acme
            saml:
              enabled: true
              idp_entity_id: "http://www.okta.com/exk-test"
              metadata_url: "http://127.0.0.1:\(server.port)/metadata"
              metadata_refresh: 1s
        """
        let configuration = try ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: ".")
        let logs = CapturedLogs()
        let metrics = GatewayMetrics()
        let gateway = GatewayServer(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                                    logger: Logger(label: "t") { _ in CapturingLogHandler(sink: logs) },
                                    accessLogger: Logger(label: "a") { _ in CapturingLogHandler(sink: CapturedLogs()) },
                                    metrics: metrics, clock: { SSOFlowTests.now })
        let address = try await gateway.start()
        let h = SSOFlowTests.Gateway(harness: Harness(server: gateway, port: address.port!, logs: logs, accessLogs: CapturedLogs()),
                                     upstream: upstream)

        // Fetched before the listener opened: the first login works.
        #expect(try Self.login(h, signer: Self.oldIdP, assertion: "a-1") == "success")
        let other = try Self.login(h, signer: Self.newIdP, assertion: "a-2")
        #expect(other == "signature_invalid", "\(other)")

        // The IdP announces its next certificate beside the current one: both verify.
        server.serve(try Self.metadata(certificates: [Self.oldIdP.certificate, Self.newIdP.certificate]))
        try await Self.waitForFetches(server)
        #expect(try Self.login(h, signer: Self.newIdP, assertion: "a-3") == "success")
        #expect(try Self.login(h, signer: Self.oldIdP, assertion: "a-4") == "success")

        // The old one is retired.
        server.serve(try Self.metadata(certificates: [Self.newIdP.certificate]))
        try await Self.waitForFetches(server)
        #expect(try Self.login(h, signer: Self.oldIdP, assertion: "a-5") == "signature_invalid")
        #expect(try Self.login(h, signer: Self.newIdP, assertion: "a-6") == "success")

        // The metadata server fails: the last good metadata stays in force, and it is said.
        server.serve("down", status: .internalServerError)
        try await Self.waitForFetches(server)
        #expect(try Self.login(h, signer: Self.newIdP, assertion: "a-7") == "success")
        #expect(logs.contains("IdP metadata fetch failed"))

        // Metadata past its validUntil is refused, never used: the old certificate stays out.
        server.serve(try Self.metadata(certificates: [Self.oldIdP.certificate], validUntil: "2025-12-31T00:00:00Z"))
        try await Self.waitForFetches(server)
        #expect(logs.contains("IdP metadata refused: past its validUntil"))
        #expect(try Self.login(h, signer: Self.oldIdP, assertion: "a-8") == "signature_invalid")
        #expect(try Self.login(h, signer: Self.newIdP, assertion: "a-9") == "success")

        let text = try h.harness.request("GET /_ssogate/metrics HTTP/1.1\r\nHost: h\r\n\r\n").text
        for result in ["success", "failure", "expired"] {
            #expect(text.contains("ssogate_idp_metadata_fetches_total{organization=\"acme\",result=\"\(result)\"}"), "\(result)")
        }
        await h.harness.stop()
        await upstream.stop()
        await server.stop()
    }

    @Test func metadataThatCannotBeFetchedAtStartLeavesLoginsUnavailableAndSaysSo() async throws {
        XMLLibrary.initialize()
        let server = try await DocumentServer.start(body: "nope")
        server.serve("nope", status: .notFound)
        let upstream = try await TestUpstream.start()
        let h = try await Harness.start(upstreamPort: upstream.port, extra: """
        protected_paths: ["/{org}/"]
        organizations:
          - name: acme
            saml: {enabled: true, metadata_url: "http://127.0.0.1:\(server.port)/metadata"}
        """)
        let r = try h.request("GET /organizations/acme/sso HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(r.status == 503)
        #expect(h.logs.contains("IdP metadata fetch failed"))
        await h.stop()
        await upstream.stop()
        await server.stop()
    }

    @Test func cacheDurationAndValidUntilAreRead() throws {
        XMLLibrary.initialize()
        let parsed = try IdPMetadata.parse(Array(try Self.metadata(certificates: [Self.oldIdP.certificate], validUntil: "2030-01-01T00:00:00Z").utf8))
        #expect(parsed.cacheDuration == 1)
        #expect(parsed.validUntil == SAMLTime.parse("2030-01-01T00:00:00Z"))
        #expect(IdPMetadata.duration("PT1H") == 3600 && IdPMetadata.duration("P1DT2H30M") == 95_400)
        #expect(IdPMetadata.duration("P1M") == nil && IdPMetadata.duration("1H") == nil)
    }
}
