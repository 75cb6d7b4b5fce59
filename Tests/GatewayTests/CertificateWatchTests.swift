import Config
import CryptoCore
import Foundation
@testable import Gateway
import Testing
import TestSupport

/// Certificate rollover: several trusted IdP certificates, each one's end published as a
/// metric, and a warning (log at start and reload, `ssogate check`) as one nears it.
@Suite("Certificate expiry")
struct CertificateWatchTests {
    /// Two IdP certificates, as during a rollover: one ending in `soonDays`, one in a year.
    static func yaml(upstreamPort: Int = 9, soonDays: Int) throws -> (String, soon: X509Certificate, later: X509Certificate) {
        let soon = try SelfSignedIdentity.generate(commonName: "idp-old", days: soonDays)
        let later = try SelfSignedIdentity.generate(commonName: "idp-new", days: 365)
        func block(_ pem: String) -> String { "|\n" + pem.split(separator: "\n").map { "          " + $0 }.joined(separator: "\n") }
        let text = """
        listen: "127.0.0.1:0"
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:\(upstreamPort)"
        session: {secrets: ["0123456789abcdef0123456789abcdef-test"]}
        protected_paths: ["/{org}/"]
        organizations:
          - name: acme
            saml:
              enabled: true
              sign_on_url: "https://idp.example.test/sso"
              certificates:
                - \(block(soon.certificatePEM))
                - \(block(later.certificatePEM))
        """
        return (text, soon.certificate, later.certificate)
    }

    @Test func aCertificateEndingWithinThirtyDaysIsWarnedAboutAndOthersAreNot() throws {
        let (text, soon, later) = try Self.yaml(soonDays: 10)
        let watch = CertificateWatch(try ConfigLoader.load(yaml: text, environment: [:], baseDirectory: "."))
        #expect(watch.entries.map(\.use) == ["idp", "idp"])
        #expect(watch.entries.map(\.notAfter) == [soon.notAfter, later.notAfter])
        let warnings = watch.warnings(now: Date())
        #expect(warnings.count == 1)
        #expect(warnings[0].contains("organization acme: idp certificate") && warnings[0].contains(soon.sha256Fingerprint))
        #expect(warnings[0].contains("expires in 9 days") || warnings[0].contains("expires in 10 days"))
        #expect(warnings[0].contains("add the IdP's new certificate to `certificates`"))
        // Forty days on, the old one has ended and the new one is still far off.
        let expired = watch.warnings(now: Date().addingTimeInterval(40 * 86_400))
        #expect(expired.count == 1)
        #expect(expired[0].contains("expired 30 days ago") || expired[0].contains("expired 29 days ago"), "\(expired)")
    }

    @Test func eachCertificatesEndIsAMetricAndTheWarningIsLoggedAtStart() async throws {
        let upstream = try await TestUpstream.start()
        let (text, soon, later) = try Self.yaml(upstreamPort: upstream.port, soonDays: 5)
        let extra = text.components(separatedBy: "\n").drop { !$0.hasPrefix("protected_paths") }.joined(separator: "\n")
        let h = try await Harness.start(upstreamPort: upstream.port, extra: extra)
        let metrics = try h.request("GET /_ssogate/metrics HTTP/1.1\r\nHost: h\r\n\r\n").text
        for certificate in [soon, later] {
            let line = "ssogate_certificate_expiry_timestamp_seconds{use=\"idp\",organization=\"acme\",sha256=\"\(certificate.sha256Fingerprint)\"} \(certificate.notAfter)"
            #expect(metrics.contains(line), "\(line) missing from\n\(metrics)")
        }
        #expect(h.logs.all.filter { $0.contains("certificate expiring") }.count == 1)
        #expect(h.logs.contains(soon.sha256Fingerprint))

        // A reload without the old certificate: its series goes, the new one stays.
        let configuration = try ConfigLoader.load(yaml: Harness.yaml(upstreamPort: upstream.port, extra: """
            protected_paths: ["/{org}/"]
            organizations:
              - name: acme
                saml:
                  enabled: true
                  sign_on_url: "https://idp.example.test/sso"
                  certificate: |
            \(later.pemForTests(indent: "          "))
            """), environment: [:], baseDirectory: ".")
        try h.server.reload(configuration)
        let after = try h.request("GET /_ssogate/metrics HTTP/1.1\r\nHost: h\r\n\r\n").text
        #expect(!after.contains(soon.sha256Fingerprint))
        #expect(after.contains(later.sha256Fingerprint))
        await h.stop()
        await upstream.stop()
    }
}

extension X509Certificate {
    /// The certificate as PEM, each line indented (for YAML block scalars in tests).
    func pemForTests(indent: String) -> String {
        let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return (["-----BEGIN CERTIFICATE-----"] + body.split(separator: "\n").map(String.init) + ["-----END CERTIFICATE-----"])
            .map { indent + $0 }.joined(separator: "\n")
    }
}
