import AsyncHTTPClient
import Config
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import SAML

/// Keeps each organization's IdP metadata (`saml.metadata_url`) current: fetched at start,
/// again every `metadata_refresh`, sooner when the metadata's `cacheDuration` or
/// `validUntil` says so. A new signing certificate is trusted from the next login on,
/// without a restart. A failed fetch keeps the last good metadata (a log line and
/// `ssogate_idp_metadata_fetches_total{result="failure"}`) and is retried within a minute;
/// metadata past its `validUntil` is refused when fetched and dropped when held, each
/// reported, never silently used.
final class MetadataRefresher: Sendable {
    static let maxBytes = 1 << 20
    static let timeout = TimeAmount.seconds(10)
    static let retryAfterFailure: TimeInterval = 60

    /// Made on the first fetch: a gateway without `metadata_url` holds no HTTP client.
    private let client = NIOLockedValueBox<HTTPClient?>(nil)
    private let group: EventLoopGroup
    private let shared: GatewayShared
    private let logger: Logger
    private let schedule = DueDates()

    init(group: EventLoopGroup, shared: GatewayShared, logger: Logger) {
        self.group = group
        self.shared = shared
        self.logger = logger
    }

    private var httpClient: HTTPClient {
        client.withLockedValue { existing in
            if let existing { return existing }
            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(connect: .seconds(5), read: Self.timeout)
            configuration.redirectConfiguration = .follow(max: 3, allowCycles: false)
            let made = HTTPClient(eventLoopGroup: group, configuration: configuration)
            existing = made
            return made
        }
    }

    /// Fetches what is due (everything, the first time), drops expired metadata. Validity
    /// is judged at the gateway's clock (the one SAML times are judged at), the schedule
    /// runs on wall time.
    func refreshDue() async {
        let now = shared.clock()
        let wall = Date()
        let configuration = shared.runtime.configuration
        for org in configuration.organizations {
            guard let url = org.saml.metadataURL else { continue }
            if let held = shared.idpMetadata[org.name], let end = held.validUntil, end <= now {
                logger.error("IdP metadata expired; its certificates are no longer trusted", metadata: [
                    "organization": "\(org.name)", "valid_until": "\(SAMLTime.format(end))",
                ])
                shared.metrics.metadataFetched(organization: org.name, result: "expired")
                shared.setMetadata(nil, for: org.name)
            }
            guard schedule.due(org.name, now: wall) else { continue }
            let wait = await fetch(url, for: org.name, refresh: TimeInterval(org.saml.metadataRefresh.components.seconds), now: now)
            schedule.set(org.name, Date().addingTimeInterval(wait))
        }
    }

    /// One fetch; returns how long until the next one.
    private func fetch(_ url: String, for organization: String, refresh: TimeInterval, now: Date) async -> TimeInterval {
        let metadata: IdPMetadata
        do {
            metadata = try await Self.download(url, client: httpClient)
        } catch {
            let kept = shared.idpMetadata[organization] != nil
            logger.error("IdP metadata fetch failed", metadata: [
                "organization": "\(organization)", "url": "\(url)", "error": "\(error)",
                "kept": "\(kept ? "the last good metadata" : "nothing (no metadata yet)")",
            ])
            shared.metrics.metadataFetched(organization: organization, result: "failure")
            return min(refresh, Self.retryAfterFailure)
        }
        if let end = metadata.validUntil, end <= now {
            logger.error("IdP metadata refused: past its validUntil", metadata: [
                "organization": "\(organization)", "url": "\(url)", "valid_until": "\(SAMLTime.format(end))",
            ])
            shared.metrics.metadataFetched(organization: organization, result: "expired")
            return min(refresh, Self.retryAfterFailure)
        }
        let previous = shared.idpMetadata[organization]
        let fingerprints = metadata.signingCertificates.map(\.sha256Fingerprint)
        let changed = previous?.signingCertificates.map(\.sha256Fingerprint) != fingerprints
            || previous?.redirectSSOURL != metadata.redirectSSOURL || previous?.entityID != metadata.entityID
        if changed {
            logger.info("IdP metadata loaded", metadata: [
                "organization": "\(organization)", "entity_id": "\(metadata.entityID)",
                "certificates": "\(fingerprints.joined(separator: ","))",
            ])
        }
        // The runtime is rebuilt only when something it uses changed (or the validity did,
        // which decides when the held copy is dropped).
        if changed || previous?.validUntil != metadata.validUntil { shared.setMetadata(metadata, for: organization) }
        shared.metrics.metadataFetched(organization: organization, result: "success")
        var wait = refresh
        if let cache = metadata.cacheDuration { wait = min(wait, max(cache, 1)) }
        if let end = metadata.validUntil { wait = min(wait, max(end.timeIntervalSince(now), 1)) }
        return wait
    }

    /// One metadata document from `url`: `200`, at most `maxBytes`, within `timeout`, parsed.
    static func download(_ url: String, client: HTTPClient) async throws -> IdPMetadata {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: timeout)
        guard response.status == .ok else { throw FetchError("HTTP \(response.status.code)") }
        let body = try await response.body.collect(upTo: maxBytes)
        return try IdPMetadata.parse(Array(body.readableBytesView))
    }

    /// Refreshes until cancelled, checking once a second what is due.
    func run() async {
        while !Task.isCancelled {
            await refreshDue()
            try? await Task.sleep(for: .seconds(1))
        }
    }

    func shutdown() async {
        let made = client.withLockedValue { existing -> HTTPClient? in
            defer { existing = nil }
            return existing
        }
        try? await made?.shutdown()
    }

    struct FetchError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// When each organization's next fetch is due.
final class DueDates: @unchecked Sendable {
    private var dates: [String: Date] = [:]
    private let lock = NSLock()

    func due(_ key: String, now: Date) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return dates[key].map { $0 <= now } ?? true
    }

    func set(_ key: String, _ date: Date) {
        lock.lock(); defer { lock.unlock() }
        dates[key] = date
    }
}
