import Config
import CryptoCore
import Foundation
import Prometheus

/// The certificates a configuration depends on and when each expires: every trusted IdP
/// certificate, the SP key pair's and the listener's. An expiring IdP certificate is the
/// usual cause of a morning when nobody can log in; several `certificates` let the new one
/// be trusted before the IdP switches (rollover without logouts), and this says when.
public struct CertificateWatch: Sendable {
    public struct Entry: Sendable, Equatable {
        /// `idp`, `sp` or `tls`.
        public let use: String
        public let organization: String?
        public let sha256: String
        public let subject: String
        public let notAfter: Int64
    }

    /// Warnings start this long before a certificate's end.
    public static let warnAhead: Int64 = 30 * 86_400

    public let entries: [Entry]

    public init(_ configuration: GatewayConfiguration) {
        var entries: [Entry] = []
        for org in configuration.organizations {
            for certificate in org.saml.certificates {
                entries.append(Entry(use: "idp", organization: org.name, sha256: certificate.sha256Fingerprint,
                                     subject: certificate.subject, notAfter: certificate.notAfter))
            }
            if let pair = org.saml.spKeyPair {
                entries.append(Entry(use: "sp", organization: org.name, sha256: pair.certificate.sha256Fingerprint,
                                     subject: pair.certificate.subject, notAfter: pair.certificate.notAfter))
            }
        }
        if let tls = configuration.tls, let leaf = try? X509Certificate.parseAll(pem: tls.certificateChainPEM).first {
            entries.append(Entry(use: "tls", organization: nil, sha256: leaf.sha256Fingerprint, subject: leaf.subject, notAfter: leaf.notAfter))
        }
        self.entries = entries
    }

    /// One line per certificate that has expired or will within `warnAhead` of `now`.
    public func warnings(now: Date) -> [String] {
        let seconds = Int64(now.timeIntervalSince1970)
        return entries.filter { $0.notAfter - seconds < Self.warnAhead }.map { entry in
            let days = (entry.notAfter - seconds) / 86_400
            let owner = entry.organization.map { "organization \($0): " } ?? ""
            let when = entry.notAfter <= seconds ? "expired \(-days) days ago" : "expires in \(days) days"
            let fix: String
            switch entry.use {
            case "idp": fix = "add the IdP's new certificate to `certificates` now; keep the old one until the IdP has switched"
            case "sp": fix = "make a new SP key pair and give the IdP its certificate"
            default: fix = "renew it and send SIGHUP"
            }
            return "\(owner)\(entry.use) certificate \(entry.subject) (sha256 \(entry.sha256)) \(when): \(fix)"
        }
    }
}

/// `ssogate_certificate_expiry_timestamp_seconds{use, organization, sha256}`: the Unix
/// time each certificate in use stops being valid (alert on `… - time() < 30*86400`).
/// Replaced whole on every reload, so a removed certificate's series goes away.
final class CertificateGauges: @unchecked Sendable {
    private let registry: PrometheusCollectorRegistry
    private var gauges: [Prometheus.Gauge] = []
    private let lock = NSLock()

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func show(_ watch: CertificateWatch) {
        lock.lock()
        defer { lock.unlock() }
        for gauge in gauges { registry.unregisterGauge(gauge) }
        gauges = watch.entries.map { entry in
            let gauge = registry.makeGauge(name: "ssogate_certificate_expiry_timestamp_seconds",
                                           labels: [("use", entry.use), ("organization", entry.organization ?? ""), ("sha256", entry.sha256)])
            gauge.set(Double(entry.notAfter))
            return gauge
        }
    }
}
