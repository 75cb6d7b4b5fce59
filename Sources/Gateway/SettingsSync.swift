import Config
import Foundation
import Logging
import StateStore

/// Keeps the running runtime in step with the state store (docs/CONTRACT.md "Organization
/// settings"): seeds console-managed organizations from the file once, applies the stored
/// settings at start, then polls their version: a change made on any replica is in force
/// here within `pollEvery` (the SPEC asks 5 s). Also drains the audit events of logins.
enum SettingsSync {
    static let pollEvery: Duration = .seconds(2)

    /// Reads the stored settings and installs a runtime with them when they moved on.
    /// False when the store did not answer (the running settings stay in force).
    @discardableResult
    static func refresh(_ shared: GatewayShared) async -> Bool {
        do {
            let (version, settings) = try await shared.store.loadSettings()
            shared.apply(settings: settings, version: version)
            return true
        } catch {
            shared.logger.warning("organization settings not read from the state store; the running ones stay in force",
                                  metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Seeds what the file gives for console-managed organizations the store does not
    /// know yet; returns the names seeded (or found seeded).
    static func seed(_ shared: GatewayShared, skipping done: Set<String>) async -> Set<String> {
        let configuration = shared.fileConfiguration
        var seeds: [String: OrganizationSettings] = [:]
        for org in configuration.organizations where org.managed == .console && !done.contains(org.name) {
            seeds[org.name] = configuration.seed(for: org) ?? .empty
        }
        guard !seeds.isEmpty else { return done }
        do {
            try await shared.store.seed(seeds)
            return done.union(seeds.keys)
        } catch {
            shared.logger.warning("console-managed organizations not seeded in the state store yet", metadata: ["error": "\(error)"])
            return done
        }
    }

    /// Seeds, then polls the settings version until cancelled; once an hour, drops audit
    /// events older than `audit_retention`.
    static func run(_ shared: GatewayShared) async {
        var seeded: Set<String> = []
        var nextPurge = ContinuousClock.now
        while !Task.isCancelled {
            seeded = await seed(shared, skipping: seeded)
            if let version = try? await shared.store.settingsVersion(), version != shared.settingsVersion {
                await refresh(shared)
            }
            if ContinuousClock.now >= nextPurge {
                nextPurge = ContinuousClock.now + .seconds(3600)
                let retention = shared.fileConfiguration.auditRetention.components.seconds
                let before = Int64(shared.clock().timeIntervalSince1970) - retention
                if let purged = try? await shared.store.purgeAudit(before: before), purged > 0 {
                    shared.logger.info("audit events past their retention dropped", metadata: ["events": "\(purged)"])
                }
            }
            try? await Task.sleep(for: pollEvery)
        }
    }

    /// Writes login audit events to the store as they come, until the stream ends.
    static func drainAudit(_ shared: GatewayShared) async {
        for await event in shared.auditEvents {
            await store(shared, event)
        }
    }

    /// An event written now (the API's changes: the answer comes after it is stored).
    static func audit(_ shared: GatewayShared, _ event: AuditEvent) async {
        log(shared, event)
        await store(shared, event)
    }

    private static func store(_ shared: GatewayShared, _ event: AuditEvent) async {
        do {
            try await shared.store.record(event)
        } catch {
            shared.metrics.auditDropped()
            shared.logger.warning("audit event not stored", metadata: ["action": "\(event.action)", "error": "\(error)"])
        }
    }

    /// Every audit event is also a log record (docs/CONTRACT.md: "also written as log records").
    static func log(_ shared: GatewayShared, _ event: AuditEvent) {
        var metadata: Logger.Metadata = ["action": "\(event.action)", "organization": "\(event.organization)", "result": "\(event.result)"]
        if let actor = event.actor { metadata["actor"] = "\(actor)" }
        if let reason = event.reason { metadata["reason"] = "\(reason)" }
        if let subject = event.subject { metadata["subject"] = "\(subject)" }
        if let ip = event.ip { metadata["peer"] = "\(ip)" }
        if let requestID = event.requestID { metadata["request_id"] = "\(requestID)" }
        shared.logger.info("audit", metadata: metadata)
    }
}
