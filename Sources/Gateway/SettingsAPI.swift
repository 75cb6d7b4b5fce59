import Config
import CryptoCore
import Foundation
import HTTPWire
import NIOHTTP1
import Sessions
import StateStore

/// The organization settings API (docs/CONTRACT.md "Organization settings: console and API"):
/// `/api/organizations/{org}/sso`, its `test`, `enable` and `disable`, and `audit`, for a
/// bearer token of `ssogate admin-token`. Every answer is JSON; every change is audited and
/// in force on this gateway at once, on other replicas at their next poll.
struct SettingsAPI {
    let shared: GatewayShared
    let peer: String?

    /// The API endpoint a request names, or nil when the path is the application's (the
    /// upstream's own `/api/organizations/...` routes pass through untouched).
    enum Endpoint: Equatable {
        case settings, roles, access, test, enable, disable, audit, sessions, revoke
    }

    /// Every operation, as docs/openapi.yaml lists them (a test keeps the two in step).
    static let operations: [(path: String, method: HTTPMethod)] = [
        ("sso", .GET), ("sso", .PUT), ("sso/roles", .PUT), ("sso/access", .PUT), ("sso/test", .POST), ("sso/enable", .POST), ("sso/disable", .POST), ("audit", .GET),
        ("sessions", .GET), ("sessions/revoke", .POST),
    ]

    static func endpoint(_ path: Substring) -> (organization: String, endpoint: Endpoint)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 5, parts[0].isEmpty, parts[1] == "api", parts[2] == "organizations", !parts[3].isEmpty else { return nil }
        let endpoint: Endpoint
        switch parts[4...].joined(separator: "/") {
        case "sso": endpoint = .settings
        case "sso/roles": endpoint = .roles
        case "sso/access": endpoint = .access
        case "sso/test": endpoint = .test
        case "sso/enable": endpoint = .enable
        case "sso/disable": endpoint = .disable
        case "audit": endpoint = .audit
        case "sessions": endpoint = .sessions
        case "sessions/revoke": endpoint = .revoke
        default: return nil
        }
        return (String(parts[3]), endpoint)
    }

    func answer(_ head: HTTPRequestHead, body: [UInt8], organization name: String, endpoint: Endpoint,
                requestID: String) async -> LocalResponse {
        let runtime = shared.runtime
        guard let org = runtime.configuration.organization(named: name) else {
            return Self.json(.notFound, ["error": "unknown_organization"])
        }
        let now = Int64(shared.clock().timeIntervalSince1970)
        let token: AdminToken
        do {
            guard let bearer = Self.bearer(head), bearer.hasPrefix("ssga_"),
                  let found = try await StoreCalls.traced("admin_token", { try await shared.store.adminToken(hash: try AdminToken.hash(bearer), now: now) }) else {
                return LocalResponse(status: .unauthorized, headers: [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer"),
                                                                      ("Cache-Control", "no-store")],
                                     body: Array(#"{"error":"unauthorized","detail":"Authorization: Bearer with a token of ssogate admin-token"}"#.utf8))
            }
            token = found
        } catch {
            return Self.unavailable(error)
        }
        guard token.organization == org.name else { return Self.json(.forbidden, ["error": "forbidden", "detail": "this token is for another organization"]) }
        let actor = "admin-token:\(token.id)"
        let method = head.method
        do {
            switch (endpoint, method) {
            case (.settings, .GET):
                return Self.json(.ok, state(org, runtime: runtime))
            case (.audit, .GET):
                return try await audit(org.name, query: RequestFields.query(head.uri))
            case (.sessions, .GET):
                let subject = RequestFields.query(head.uri)["subject"].flatMap { $0.isEmpty ? nil : $0 }
                let live = try await StoreCalls.traced("live_sessions", { try await shared.store.liveSessions(organization: org.name, subject: subject, now: now, limit: 1000) })
                return Self.json(.ok, ["sessions": live.map(SessionRow.init)])
            case (.revoke, .POST):
                // Sessions end on every gateway, whoever manages the organization's settings.
                return await revoke(body, organization: org.name, actor: actor, requestID: requestID)
            case (_, .GET), (_, .HEAD):
                return Self.json(.methodNotAllowed, ["error": "method_not_allowed"])
            default:
                break
            }
            guard org.managed == .console else { return Self.json(.conflict, ["error": "managed_by_file"]) }
            switch (endpoint, method) {
            case (.settings, .PUT):
                let draft: IdPSettings
                switch Self.parse(body, now: shared.clock()) {
                case .settings(let parsed): draft = parsed
                case .problems(let problems):
                    await audit("sso.settings.update", org.name, actor: actor, result: "failure", reason: "invalid_settings", requestID: requestID)
                    return Self.json(.unprocessableEntity, Problems(errors: problems))
                }
                _ = try await StoreCalls.traced("save_draft", { try await shared.store.saveDraft(draft, organization: org.name) })
                await audit("sso.settings.update", org.name, actor: actor, result: "success", reason: nil, requestID: requestID)
                await SettingsSync.refresh(shared)
                return Self.json(.ok, state(org, runtime: shared.runtime))
            case (.roles, .PUT):
                // In force at once, on members' next requests (as in the console).
                let mapping: StoredRoleMapping
                switch Self.parseRoles(body) {
                case .success(let parsed): mapping = parsed
                case .failure(let problems):
                    await audit("sso.settings.update", org.name, actor: actor, result: "failure", reason: "invalid_role_mapping", requestID: requestID)
                    return Self.json(.unprocessableEntity, problems)
                }
                let unknown = Self.unknownGroups(mapping, policy: runtime.configuration.organization(named: org.name)?.access ?? org.access)
                guard unknown.isEmpty else {
                    await audit("sso.settings.update", org.name, actor: actor, result: "failure", reason: "invalid_role_mapping", requestID: requestID)
                    return Self.json(.unprocessableEntity, Problems(errors: unknown))
                }
                _ = try await StoreCalls.traced("set_role_mapping", { try await shared.store.setRoleMapping(mapping, organization: org.name) })
                await audit("sso.settings.update", org.name, actor: actor, result: "success", reason: "role_mapping", requestID: requestID)
                await SettingsSync.refresh(shared)
                return Self.json(.ok, state(org, runtime: shared.runtime))
            case (.access, .PUT):
                // In force at once, on every request (not only from the next login).
                let policy: AccessPolicy
                switch Self.parseAccess(body, organization: org.name, configuration: runtime.configuration) {
                case .success(let parsed): policy = parsed
                case .failure(let problems):
                    await audit("sso.settings.update", org.name, actor: actor, result: "failure", reason: "invalid_access_policy", requestID: requestID)
                    return Self.json(.unprocessableEntity, problems)
                }
                _ = try await StoreCalls.traced("set_access_policy", { try await shared.store.setAccessPolicy(policy, organization: org.name) })
                await audit("sso.settings.update", org.name, actor: actor, result: "success", reason: "access_policy", requestID: requestID)
                await SettingsSync.refresh(shared)
                return Self.json(.ok, state(org, runtime: shared.runtime))
            case (.test, .POST):
                // The draft the test URL names is the one the runtime's draft flow tests.
                guard await SettingsSync.refresh(shared) else { return Self.unavailable(StoreError("settings not read")) }
                let settings = shared.runtime.settings[org.name]
                guard let revision = settings?.draftRevision, settings?.draft != nil else {
                    return Self.json(.conflict, ["error": "no_draft", "detail": "save settings with PUT before testing them"])
                }
                return Self.json(.ok, ["url": runtime.configuration.publicURL + "/organizations/\(org.name)/sso?draft=\(revision)"])
            case (.enable, .POST), (.disable, .POST):
                let on = endpoint == .enable
                let outcome = try await StoreCalls.traced("set_enabled", { try await shared.store.setEnabled(on, organization: org.name) })
                guard case .done = outcome else {
                    await audit("sso.enable", org.name, actor: actor, result: "failure", reason: "not_tested", requestID: requestID)
                    return Self.json(.conflict, ["error": "not_tested", "detail": "settings are enabled once a test login with them passed"])
                }
                await audit(on ? "sso.enable" : "sso.disable", org.name, actor: actor, result: "success", reason: nil, requestID: requestID)
                if !on { await Self.endSessions(of: org.name, shared) }
                await SettingsSync.refresh(shared)
                return Self.json(.ok, state(org, runtime: shared.runtime))
            default:
                return Self.json(.methodNotAllowed, ["error": "method_not_allowed"])
            }
        } catch {
            return Self.unavailable(error)
        }
    }

    // MARK: - State

    /// The SPEC's `GET` answer: what to paste into the IdP, and the settings.
    func state(_ org: GatewayConfiguration.Organization, runtime: GatewayRuntime) -> SSOState {
        let base = runtime.configuration.publicURL + "/organizations/" + org.name + "/saml"
        let sp = SSOState.SP(entityID: base + "/metadata", acsURL: base + "/consume", metadataURL: base + "/metadata")
        // The mapping in force: the runtime's organization has the console's applied.
        let live = runtime.configuration.organization(named: org.name)
        let roles = live?.roleMapping.map(StoredRoleMapping.init)
        let access = live?.access ?? org.access
        guard org.managed == .console, let stored = runtime.settings[org.name] else {
            // File-managed (or not seeded yet): the file's settings are the active ones.
            return SSOState(organization: org.name, id: org.id, managed: org.managed.rawValue, sp: sp,
                            active: org.idpSettings.map { SSOState.Settings($0, tested: nil) }, draft: nil, enabled: org.saml.enabled,
                            roleMapping: roles, access: access)
        }
        return SSOState(organization: org.name, id: org.id, managed: org.managed.rawValue, sp: sp,
                        active: stored.active.map { SSOState.Settings($0, tested: stored.activeTested) },
                        draft: stored.draft.map { SSOState.Settings($0, tested: stored.draftTested) },
                        enabled: stored.enabled, roleMapping: roles, access: access)
    }

    struct SSOState: Encodable {
        struct SP: Encodable {
            let entityID: String, acsURL: String, metadataURL: String
            enum CodingKeys: String, CodingKey { case entityID = "entity_id", acsURL = "acs_url", metadataURL = "metadata_url" }
        }
        struct Tested: Encodable {
            let ok: Bool, at: String, reason: String?
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(ok, forKey: .ok)
                try c.encode(at, forKey: .at)
                try c.encode(reason, forKey: .reason)
            }
            enum CodingKeys: String, CodingKey { case ok, at, reason }
        }
        struct Settings: Encodable {
            let signOnURL: String, idpEntityID: String?, certificates: [String], allowIdPInitiated: Bool, tested: Tested?
            init(signOnURL: String, idpEntityID: String?, certificates: [String], allowIdPInitiated: Bool, tested: Tested?) {
                self.signOnURL = signOnURL
                self.idpEntityID = idpEntityID
                self.certificates = certificates
                self.allowIdPInitiated = allowIdPInitiated
                self.tested = tested
            }
            init(_ s: IdPSettings, tested: TestResult?) {
                self.init(signOnURL: s.signOnURL, idpEntityID: s.idpEntityID, certificates: s.certificates, allowIdPInitiated: s.allowIdPInitiated,
                          tested: tested.map { Tested(ok: $0.ok, at: SettingsAPI.isoTime($0.at), reason: $0.reason) })
            }
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(signOnURL, forKey: .signOnURL)
                try c.encode(idpEntityID, forKey: .idpEntityID)
                try c.encode(certificates, forKey: .certificates)
                try c.encode(allowIdPInitiated, forKey: .allowIdPInitiated)
                try c.encode(tested, forKey: .tested)
            }
            enum CodingKeys: String, CodingKey {
                case signOnURL = "sign_on_url", idpEntityID = "idp_entity_id", certificates, allowIdPInitiated = "allow_idp_initiated", tested
            }
        }
        let organization: String, id: String?, managed: String, sp: SP, active: Settings?, draft: Settings?, enabled: Bool
        let roleMapping: StoredRoleMapping?
        let access: AccessPolicy
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(organization, forKey: .organization)
            try c.encode(id, forKey: .id)
            try c.encode(managed, forKey: .managed)
            try c.encode(sp, forKey: .sp)
            try c.encode(active, forKey: .active)
            try c.encode(draft, forKey: .draft)
            try c.encode(enabled, forKey: .enabled)
            try c.encode(roleMapping, forKey: .roleMapping)
            try c.encode(access, forKey: .access)
        }
        enum CodingKeys: String, CodingKey { case organization, id, managed, sp, active, draft, enabled, roleMapping = "role_mapping", access }
    }

    struct Problems: Encodable, Error {
        let errors: [SettingsProblem]
    }

    /// A PUT body as IdP settings, or every problem with it by field.
    enum Parsed {
        case settings(IdPSettings)
        case problems([SettingsProblem])
    }

    static func parse(_ body: [UInt8], now: Date) -> Parsed {
        struct Body: Decodable {
            let signOnURL: String?, idpEntityID: String?, certificates: [String]?, allowIdPInitiated: Bool?
            enum CodingKeys: String, CodingKey {
                case signOnURL = "sign_on_url", idpEntityID = "idp_entity_id", certificates, allowIdPInitiated = "allow_idp_initiated"
            }
        }
        let shape = "a JSON object with sign_on_url, certificates, idp_entity_id and allow_idp_initiated"
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            return .problems([SettingsProblem("body", "must be \(shape)")])
        }
        var problems: [SettingsProblem] = []
        for key in object.keys.sorted() where Body.CodingKeys(rawValue: key) == nil {
            problems.append(SettingsProblem(key, key == "tested" ? "is set by test logins, not sent" : "is not a settings field"))
        }
        let decoded: Body
        do {
            decoded = try JSONDecoder().decode(Body.self, from: Data(body))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined()
            let expected = ["sign_on_url": "a string", "idp_entity_id": "a string or null", "allow_idp_initiated": "true or false"]
            return .problems(problems + [SettingsProblem(field.isEmpty ? "body" : field,
                                                        "must be \(expected[field] ?? (field.hasPrefix("certificates") ? "a list of PEM strings" : shape))")])
        } catch {
            return .problems([SettingsProblem("body", "must be \(shape)")])
        }
        if decoded.signOnURL == nil { problems.append(SettingsProblem("sign_on_url", "is required (the IdP's Single Sign-On URL)")) }
        if decoded.certificates == nil { problems.append(SettingsProblem("certificates", "is required (a list of PEM certificates)")) }
        guard problems.isEmpty, let url = decoded.signOnURL, let pems = decoded.certificates else { return .problems(problems) }
        let settings = IdPSettings(signOnURL: url, idpEntityID: decoded.idpEntityID, certificates: pems,
                                   allowIdPInitiated: decoded.allowIdPInitiated ?? false)
        let checked = settings.problems(now: now)
        return checked.isEmpty ? .settings(settings) : .problems(checked)
    }

    /// A `PUT .../sso/roles` body as a role mapping, or every problem with it by field.
    /// Role-mapping rows naming a resource group the organization's policy does not define.
    static func unknownGroups(_ mapping: StoredRoleMapping, policy: AccessPolicy) -> [SettingsProblem] {
        let defined = Set(policy.resourceGroups.map(\.name))
        return mapping.rules.enumerated().compactMap { index, rule in
            guard let group = rule.resourceGroup, !defined.contains(group) else { return nil }
            return SettingsProblem("role_mapping.rules[\(index)]", "\"\(group)\" is not one of this organization's resource groups: define it in the access policy first")
        }
    }

    /// `PUT .../sso/access`: a policy object, checked against the rest of the configuration
    /// as `ssogate check` checks the file's; problems are named `access.FIELD`.
    static func parseAccess(_ body: [UInt8], organization: String, configuration: GatewayConfiguration) -> Result<AccessPolicy, Problems> {
        let shape = "a JSON object with the access policy's fields (default_role, allowed_email_domains, enforce_roles, external_collaborators, sso, resource_groups, contact)"
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            return .failure(Problems(errors: [SettingsProblem("body", "must be \(shape)")]))
        }
        let fields = Set(AccessPolicy.CodingKeys.allCases.map(\.rawValue))
        let unknown = object.keys.sorted().filter { !fields.contains($0) }
        let policy: AccessPolicy
        do {
            policy = try JSONDecoder().decode(AccessPolicy.self, from: Data(body))
        } catch {
            return .failure(Problems(errors: unknown.isEmpty ? [SettingsProblem("body", "must be \(shape)")]
                : unknown.map { SettingsProblem($0, "is not an access policy field") }))
        }
        guard unknown.isEmpty else { return .failure(Problems(errors: unknown.map { SettingsProblem($0, "is not an access policy field") })) }
        let problems = policy.problems(in: configuration.accessContext(for: organization))
        return problems.isEmpty ? .success(policy) : .failure(Problems(errors: problems.map { SettingsProblem("access.\($0.field)", $0.message) }))
    }

    static func parseRoles(_ body: [UInt8]) -> Result<StoredRoleMapping, Problems> {
        let shape = "a JSON object with attribute, rules ([{\"value\", \"role\"}]) and default_role"
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            return .failure(Problems(errors: [SettingsProblem("body", "must be \(shape)")]))
        }
        let unknown = object.keys.sorted().filter { !["attribute", "rules", "default_role"].contains($0) }
        guard unknown.isEmpty, let mapping = try? JSONDecoder().decode(StoredRoleMapping.self, from: Data(body)) else {
            return .failure(Problems(errors: unknown.isEmpty ? [SettingsProblem("body", "must be \(shape)")]
                : unknown.map { SettingsProblem($0, "is not a role mapping field") }))
        }
        let problems = mapping.problems()
        return problems.isEmpty ? .success(mapping) : .failure(Problems(errors: problems))
    }

    // MARK: - Sessions

    /// `{"subject": "..."}`: every live session of that member in this organization ends.
    private func revoke(_ body: [UInt8], organization: String, actor: String, requestID: String) async -> LocalResponse {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let subject = object["subject"] as? String,
              !subject.isEmpty, object.count == 1 else {
            return Self.json(.unprocessableEntity, Problems(errors: [SettingsProblem("subject", "send {\"subject\": \"the member's NameID (email)\"}")]))
        }
        guard let ended = await SessionSync.revoke(shared, organization: organization, subject: subject, actor: actor, ip: peer,
                                                   requestID: requestID) else {
            return Self.unavailable(StoreError("queued: the sessions end on every gateway once the store answers (retried every second)"))
        }
        return Self.json(.ok, Revoked(subject: subject, ended: ended.count))
    }

    /// Disabling SSO ends the organization's sessions, so that enabling it again does not
    /// bring old cookies back.
    static func endSessions(of organization: String, _ shared: GatewayShared) async {
        if let ended = await SessionSync.end(shared, .organization(organization)) { shared.metrics.sessionsEnded(ended.count, how: "disabled") }
    }

    struct Revoked: Encodable {
        let subject: String, ended: Int
    }

    struct SessionRow: Encodable {
        let id: String, subject: String, created: String, expires: String
        init(_ record: SessionRecord) {
            id = record.id
            subject = record.subject
            created = SettingsAPI.isoTime(record.created)
            expires = SettingsAPI.isoTime(record.expires)
        }
    }

    // MARK: - Audit

    private func audit(_ organization: String, query: [String: String]) async throws -> LocalResponse {
        let q = AuditQuery(organization: organization, limit: query["limit"].flatMap { Int($0) } ?? 100,
                           action: query["action"].flatMap { $0.isEmpty ? nil : $0 }, result: query["result"].flatMap { $0.isEmpty ? nil : $0 },
                           since: query["since"].flatMap(Self.parseTime), until: query["until"].flatMap(Self.parseTime))
        let events = try await StoreCalls.traced("events", { try await shared.store.events(q) })
        if let format = query["format"], let export = Self.export(events, format: format, organization: organization) { return export }
        return Self.json(.ok, ["events": events.map(AuditRow.init)])
    }

    /// Audit events as a download: `jsonl` (JSON Lines) or `csv`; nil for another format.
    static func export(_ events: [AuditEvent], format: String, organization: String) -> LocalResponse? {
        let rows = events.map(AuditRow.init)
        switch format {
        case "jsonl":
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let lines = rows.map { (try? encoder.encode($0)).map { String(decoding: $0, as: UTF8.self) } ?? "{}" }
            return LocalResponse(status: .ok, headers: [("Content-Type", "application/x-ndjson"), ("Cache-Control", "no-store"),
                                                        ("Content-Disposition", "attachment; filename=\"\(organization)-audit.jsonl\"")],
                                 body: Array(lines.map { $0 + "\n" }.joined().utf8))
        case "csv":
            var text = "time,action,organization,actor,result,reason,subject,ip,request_id\r\n"
            for row in rows {
                text += [row.time, row.action, row.organization, row.actor ?? "", row.result, row.reason ?? "", row.subject ?? "", row.ip ?? "",
                         row.requestID ?? ""].map(Self.csvField).joined(separator: ",") + "\r\n"
            }
            return LocalResponse(status: .ok, headers: [("Content-Type", "text/csv; charset=utf-8"), ("Cache-Control", "no-store"),
                                                        ("Content-Disposition", "attachment; filename=\"\(organization)-audit.csv\"")],
                                 body: Array(text.utf8))
        default:
            return nil
        }
    }

    /// An audit event as the API shows it: the time in ISO 8601.
    struct AuditRow: Codable {
        let time: String, action: String, organization: String, actor: String?, result: String, reason: String?, subject: String?
        let ip: String?, requestID: String?
        init(_ e: AuditEvent) {
            time = SettingsAPI.isoTime(e.time)
            action = e.action
            organization = e.organization
            actor = e.actor
            result = e.result
            reason = e.reason
            subject = e.subject
            ip = e.ip
            requestID = e.requestID
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(time, forKey: .time)
            try c.encode(action, forKey: .action)
            try c.encode(organization, forKey: .organization)
            try c.encode(actor, forKey: .actor)
            try c.encode(result, forKey: .result)
            try c.encode(reason, forKey: .reason)
            try c.encode(subject, forKey: .subject)
            try c.encode(ip, forKey: .ip)
            try c.encode(requestID, forKey: .requestID)
        }
        enum CodingKeys: String, CodingKey {
            case time, action, organization, actor, result, reason, subject, ip, requestID = "request_id"
        }
    }

    /// A CSV field, quoted when it must be; a leading `=`, `+`, `-` or `@` is prefixed with
    /// `'` so a spreadsheet does not run it as a formula.
    static func csvField(_ value: String) -> String {
        var value = value
        if let first = value.first, "=+-@".contains(first) { value = "'" + value }
        guard value.contains(where: { ",\"\r\n".contains($0) }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    func audit(_ action: String, _ organization: String, actor: String?, result: String, reason: String?, subject: String? = nil,
               requestID: String) async {
        await SettingsSync.audit(shared, AuditEvent(time: Int64(shared.clock().timeIntervalSince1970), action: action, organization: organization,
                                                    actor: actor, result: result, reason: reason, subject: subject, ip: peer, requestID: requestID))
    }

    // MARK: - Helpers

    static func bearer(_ head: HTTPRequestHead) -> String? {
        guard let value = head.headers.first(name: "authorization"), value.count > 7,
              value.prefix(7).lowercased() == "bearer " else { return nil }
        return String(value.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    static func json(_ status: HTTPResponseStatus, _ value: some Encodable) -> LocalResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(value)) ?? Data(#"{"error":"internal"}"#.utf8)
        return LocalResponse(status: status, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body: Array(body))
    }

    static func unavailable(_ error: Error) -> LocalResponse {
        json(.serviceUnavailable, ["error": "state_store_unavailable", "detail": "\(error)"])
    }

    static func isoTime(_ seconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// ISO 8601 (`2026-12-06T10:00:00Z`) or seconds since 1970.
    static func parseTime(_ text: String) -> Int64? {
        if let seconds = Int64(text) { return seconds }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text).map { Int64($0.timeIntervalSince1970) }
    }
}
