import Access
import AsyncHTTPClient
import Config
import CryptoCore
import Foundation
import HTTPWire
import NIOCore
import NIOHTTP1
import SAML
import Sessions
import StateStore

/// The org admin's console pages (docs/CONTRACT.md "Organization settings"): who may see them,
/// and what each form does. Pages are `ConsolePage`'s; the operations are the settings API's
/// (the same store calls, the same audit events).
///
/// Who is an org admin: whoever followed a one-time link of `ssogate admin-link` (a console
/// cookie for an hour), or a member whose grant for the organization has the `admin` role.
/// Every POST carries a CSRF token sealed for that person and organization, and a
/// cross-site one is refused on its `Origin` or `Sec-Fetch-Site` alone.
struct Console {
    let shared: GatewayShared
    let peer: String?

    enum Page: Equatable { case settings, save, importMetadata, enable, disable, roles, access, sessions, audit, linkLogin }

    /// The console page a path under `/organizations/{org}/` names, or nil (the
    /// application's own settings pages pass through).
    static func page(_ rest: String, method: HTTPMethod) -> Page? {
        switch (rest, method) {
        case ("settings/sso", .GET), ("settings/sso", .HEAD): return .settings
        case ("settings/sso", .POST): return .save
        case ("settings/sso/enable", .POST): return .enable
        case ("settings/sso/disable", .POST): return .disable
        case ("settings/sso/roles", .POST): return .roles
        case ("settings/sso/access", .POST): return .access
        case ("settings/sso/metadata", .POST): return .importMetadata
        case ("settings/sso/sessions", .POST): return .sessions
        case ("settings/audit", .GET), ("settings/audit", .HEAD): return .audit
        case ("settings/sso/login", .GET): return .linkLogin
        default: return nil
        }
    }

    static let cookieName = "ssogate_console"
    static let lifetime: Int64 = 3600

    /// The console cookie's content.
    struct Session: Codable {
        let organization: String
        let actor: String
        let expires: Int64
    }

    /// What a CSRF token binds: one person, one organization, a few hours.
    struct Intent: Codable {
        let organization: String
        let actor: String
        let expires: Int64
    }

    func answer(_ head: HTTPRequestHead, body: [UInt8], organization name: String, page: Page, requestID: String) async -> LocalResponse {
        let runtime = shared.runtime
        guard let org = runtime.configuration.organization(named: name) else { return .text(.notFound, "unknown organization") }
        let secrets = runtime.configuration.session.secrets
        let sessions = SealedCodec<Session>(secrets: secrets, purpose: "console")
        let intents = SealedCodec<Intent>(secrets: secrets, purpose: "console-csrf")
        let now = Int64(shared.clock().timeIntervalSince1970)
        let base = "/organizations/\(org.name)/settings/sso"

        if page == .linkLogin {
            return await linkLogin(head, org: org, sessions: sessions, now: now, requestID: requestID)
        }
        // Who is asking: the console cookie, or a member's grant with the admin role.
        let cookies = RequestFields.cookies(head.headers)
        var actor = cookies[Self.cookieName].flatMap { sessions.open($0) }
            .flatMap { $0.organization == org.name && $0.expires > now ? $0.actor : nil }
        // A grant as requests see it: not ended (logout, revoke), not idle, SSO enabled.
        if actor == nil, let value = cookies[runtime.flow.cookieName],
           let session = runtime.flow.live(runtime.flow.sessions.open(value, now: shared.clock())), let grant = session.grants[org.name] {
            let standing = runtime.flow.standing(grant, in: org)
            guard standing == .allow(role: .admin, external: nil) else {
                let role = if case .allow(let role?, _) = standing { role.name } else { "none" }
                return Self.page(.forbidden, ConsolePage.forbidden(organization: org.name, actor: grant.subject,
                                                                   reason: "You are signed in as \(grant.subject), whose role in \(org.name) is \(role), not admin."))
            }
            actor = grant.subject
        }
        guard let actor else {
            return Self.page(.unauthorized, ConsolePage.signIn(organization: org.name, loginURL: "/organizations/\(org.name)/sso?return_to=\(base)"))
        }
        let csrf = (try? intents.seal(Intent(organization: org.name, actor: actor, expires: now + 4 * 3600))) ?? ""

        // A state-changing request must come from this console's own form.
        if head.method == .POST {
            // The metadata import sends a file, so its form is multipart.
            let multipart = head.headers.first(name: "content-type").flatMap(MultipartForm.boundary(contentType:))
                .flatMap { MultipartForm(body, boundary: $0) }
            let form = multipart?.fields ?? RequestFields.form(String(decoding: body, as: UTF8.self))
            let intent = form["csrf"].flatMap { intents.open($0) }
            guard let intent, intent.organization == org.name, intent.actor == actor, intent.expires > now,
                  !SiteProof.crossSite(head.headers, publicURL: runtime.configuration.publicURL) else {
                return Self.page(.forbidden, ConsolePage.refused(organization: org.name, title: "This form has expired",
                                                                 detail: "It was not sent from this page in the last hours (or came from another site). Open the settings page again and repeat the change.",
                                                                 actor: actor))
            }
            if page == .sessions {
                // Ending sessions is no settings change: file-managed organizations have it too.
                return await endSessions(of: form["subject"] ?? "", org: org, actor: actor, csrf: csrf, requestID: requestID)
            }
            guard org.managed == .console else {
                return Self.page(.conflict, ConsolePage.refused(organization: org.name, title: "Managed in the configuration file",
                                                                detail: "This organization's settings are changed in the gateway's configuration file, not here.", actor: actor))
            }
            do {
                switch page {
                case .save: return try await save(form, org: org, actor: actor, csrf: csrf, requestID: requestID)
                case .enable, .disable: return try await toggle(page == .enable, org: org, actor: actor, requestID: requestID)
                case .roles: return try await roles(form, org: org, actor: actor, csrf: csrf, requestID: requestID)
                case .access: return try await access(form, org: org, actor: actor, csrf: csrf, requestID: requestID)
                case .importMetadata:
                    return await importMetadata(file: multipart?["metadata_file"]?.content ?? [], url: form["metadata_url"] ?? "", org: org,
                                                actor: actor, csrf: csrf)
                default: break
                }
            } catch {
                return Self.page(.serviceUnavailable, ConsolePage.refused(organization: org.name, title: "Not saved: the state store did not answer",
                                                                          detail: "Nothing changed. Try again in a moment; if it persists, tell the gateway's operator (\(error)).",
                                                                          actor: actor))
            }
        }
        switch page {
        case .audit:
            return await audit(head, org: org, actor: actor)
        default:
            let query = RequestFields.query(head.uri)
            let notice = query["done"].flatMap { ["enabled": "SAML SSO is enabled: members log in through your IdP.",
                                                 "disabled": "SAML SSO is disabled.",
                                                 "roles": "Roles saved: in force now.",
                                                 "access": "Access policy saved: in force now, on every gateway within seconds."][$0] }
            return Self.page(.ok, ConsolePage.settings(view(org, runtime: shared.runtime, form: nil, problems: [], notice: notice, csrf: csrf, actor: actor)))
        }
    }

    // MARK: - Actions

    /// "Update and Test SAML Configuration": the draft saved, then the test login.
    private func save(_ form: [String: String], org: GatewayConfiguration.Organization, actor: String, csrf: String,
                      requestID: String) async throws -> LocalResponse {
        let values = ConsolePage.Form(signOnURL: form["sign_on_url"] ?? "", idpEntityID: form["idp_entity_id"] ?? "",
                                      certificates: form["certificate"] ?? "", allowIdPInitiated: form["allow_idp_initiated"] == "on")
        let settings = values.settings
        let problems = settings.problems(now: shared.clock())
        guard problems.isEmpty else {
            await audit("sso.settings.update", org.name, actor: actor, result: "failure", reason: "invalid_settings", requestID: requestID)
            // What was pasted stays in the form, beside what is wrong with it.
            return Self.page(.unprocessableEntity, ConsolePage.settings(view(org, runtime: shared.runtime, form: values, problems: problems,
                                                                             notice: nil, csrf: csrf, actor: actor)))
        }
        let saved = try await StoreCalls.traced("save_draft", { try await shared.store.saveDraft(settings, organization: org.name) })
        await audit("sso.settings.update", org.name, actor: actor, result: "success", reason: nil, requestID: requestID)
        await SettingsSync.refresh(shared)
        return LocalResponse(status: .seeOther, headers: [("Location", "/organizations/\(org.name)/sso?draft=\(saved.draftRevision)"),
                                                          ("Cache-Control", "no-store")], body: [])
    }

    /// "Fill in from IdP metadata": the metadata file, or the document at its URL, read into
    /// the settings form (not saved: the admin checks it and presses "Update and Test").
    /// Fetched URLs are `https` to public addresses (FetchPolicy; a development gateway, served
    /// over `http`, also loopback), at most 1 MiB, within 10 seconds, redirects not followed.
    private func importMetadata(file: [UInt8], url: String, org: GatewayConfiguration.Organization, actor: String,
                                csrf: String) async -> LocalResponse {
        let url = url.trimmingCharacters(in: .whitespacesAndNewlines)
        let current = shared.runtime.settings[org.name]
        var form = ConsolePage.Form(current?.draft ?? current?.active)
        func refused(_ message: String) -> LocalResponse {
            Self.page(.unprocessableEntity, ConsolePage.settings(view(org, runtime: shared.runtime, form: form, problems: [SettingsProblem("metadata", message)],
                                                                      notice: nil, csrf: csrf, actor: actor)))
        }
        let metadata: IdPMetadata
        do {
            if !file.isEmpty {
                metadata = try IdPMetadata.parse(file)
            } else if !url.isEmpty {
                let developing = shared.runtime.configuration.publicURL.hasPrefix("http://")
                guard let parsed = URL(string: url) else { return refused("The metadata address must be a full https:// URL.") }
                if let problem = await FetchPolicy.problem(parsed, developing: developing) { return refused(problem) }
                var configuration = HTTPClient.Configuration()
                configuration.timeout = .init(connect: .seconds(5), read: MetadataRefresher.timeout)
                configuration.redirectConfiguration = .disallow
                let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
                let downloaded: Result<IdPMetadata, Error>
                do { downloaded = .success(try await MetadataRefresher.download(url, client: client)) } catch { downloaded = .failure(error) }
                try? await client.shutdown()
                metadata = try downloaded.get()
            } else {
                return refused("Choose the metadata file your IdP gave you, or give the address it is published at.")
            }
        } catch let error as SAMLError {
            return refused("This is not IdP metadata ssogate can read: \(error.detail).")
        } catch let error as MetadataRefresher.FetchError {
            return refused("The metadata could not be fetched from \(url) (\(error)). Check the address, or download the file and choose it instead.")
        } catch {
            // No more than that: the reason a connection failed says things about the network.
            return refused("The metadata could not be fetched from \(url). Check the address, or download the file and choose it instead.")
        }
        if let end = metadata.validUntil, end <= shared.clock() {
            return refused("This metadata expired (its validUntil has passed): ask your IdP for a current copy.")
        }
        form.idpEntityID = metadata.entityID
        form.certificates = metadata.signingCertificates.map { CertificateSummary.pem($0.der) }.joined()
        if let sso = metadata.redirectSSOURL { form.signOnURL = sso }
        let count = metadata.signingCertificates.count
        let notice = "Read from the IdP's metadata: entity ID \(metadata.entityID), \(count) signing certificate\(count == 1 ? "" : "s")"
            + (metadata.redirectSSOURL == nil ? ", but no Sign-On URL for the HTTP-Redirect binding: paste it below" : "")
            + ". Nothing is saved yet: check the settings below, then press \"Update and Test SAML Configuration\"."
        return Self.page(.ok, ConsolePage.settings(view(org, runtime: shared.runtime, form: form, problems: [], notice: notice, csrf: csrf, actor: actor)))
    }

    /// "End a member's sessions": every live session of that member in this organization,
    /// on every gateway.
    private func endSessions(of subject: String, org: GatewayConfiguration.Organization, actor: String, csrf: String,
                             requestID: String) async -> LocalResponse {
        let subject = subject.trimmingCharacters(in: .whitespacesAndNewlines)
        let notice: String
        if subject.isEmpty {
            notice = "Give the member's email (their NameID) to end their sessions."
        } else if let ended = await SessionSync.revoke(shared, organization: org.name, subject: subject, actor: actor, ip: peer,
                                                       requestID: requestID) {
            notice = ended.isEmpty ? "\(subject) had no live sessions in \(org.name)."
                : "Ended \(ended.count) session\(ended.count == 1 ? "" : "s") of \(subject): they must log in again, on every device."
        } else {
            notice = "The state store did not answer: \(subject)'s sessions end on every gateway once it does (the ending is retried every second)."
        }
        return Self.page(.ok, ConsolePage.settings(view(org, runtime: shared.runtime, form: nil, problems: [], notice: notice, csrf: csrf, actor: actor)))
    }

    /// The role mapping rows: in force at once (they change what members may do, not whom
    /// the gateway trusts): roles are worked out per request from the values asserted at login.
    private func roles(_ form: [String: String], org: GatewayConfiguration.Organization, actor: String, csrf: String,
                       requestID: String) async throws -> LocalResponse {
        let values = ConsolePage.Roles(attribute: form["role_attribute"] ?? "", rules: form["role_rules"] ?? "", defaultRole: form["default_role"] ?? "")
        let mapping = values.mapping
        let problems = mapping.problems() + SettingsAPI.unknownGroups(mapping, policy: org.access)
        guard problems.isEmpty else {
            await audit("sso.settings.update", org.name, actor: actor, result: "failure", reason: "invalid_role_mapping", requestID: requestID)
            var page = view(org, runtime: shared.runtime, form: nil, problems: problems, notice: nil, csrf: csrf, actor: actor)
            page.roles = values
            return Self.page(.unprocessableEntity, ConsolePage.settings(page))
        }
        _ = try await StoreCalls.traced("set_role_mapping", { try await shared.store.setRoleMapping(mapping, organization: org.name) })
        await audit("sso.settings.update", org.name, actor: actor, result: "success", reason: "role_mapping", requestID: requestID)
        await SettingsSync.refresh(shared)
        return LocalResponse(status: .seeOther, headers: [("Location", "/organizations/\(org.name)/settings/sso?done=roles"), ("Cache-Control", "no-store")],
                             body: [])
    }

    /// "Who gets in": checked as `ssogate check` checks the file's policy, then in force at once.
    private func access(_ form: [String: String], org: GatewayConfiguration.Organization, actor: String, csrf: String,
                        requestID: String) async throws -> LocalResponse {
        var values = ConsolePage.Policy(refuseUnmapped: form["refuse_unmapped"] == "on", domains: form["allowed_domains"] ?? "",
                                        enforceRoles: form["enforce_roles"] == "on", ssoOptional: form["sso_mode"] == "optional",
                                        collaborators: form["collaborators"] ?? "", groups: form["resource_groups"] ?? "", contact: form["contact"] ?? "")
        values.keepDefaultRole(of: org.access)
        let policy = values.policy
        let problems = policy.problems(in: shared.runtime.configuration.accessContext(for: org.name)).map { SettingsProblem("access.\($0.field)", $0.message) }
        guard problems.isEmpty else {
            await audit("sso.settings.update", org.name, actor: actor, result: "failure", reason: "invalid_access_policy", requestID: requestID)
            var page = view(org, runtime: shared.runtime, form: nil, problems: problems, notice: nil, csrf: csrf, actor: actor)
            page.policy = values
            return Self.page(.unprocessableEntity, ConsolePage.settings(page))
        }
        _ = try await StoreCalls.traced("set_access_policy", { try await shared.store.setAccessPolicy(policy, organization: org.name) })
        await audit("sso.settings.update", org.name, actor: actor, result: "success", reason: "access_policy", requestID: requestID)
        await SettingsSync.refresh(shared)
        return LocalResponse(status: .seeOther, headers: [("Location", "/organizations/\(org.name)/settings/sso?done=access"), ("Cache-Control", "no-store")],
                             body: [])
    }

    private func toggle(_ on: Bool, org: GatewayConfiguration.Organization, actor: String, requestID: String) async throws -> LocalResponse {
        guard case .done = try await StoreCalls.traced("set_enabled", { try await shared.store.setEnabled(on, organization: org.name) }) else {
            await audit("sso.enable", org.name, actor: actor, result: "failure", reason: "not_tested", requestID: requestID)
            return Self.page(.conflict, ConsolePage.refused(organization: org.name, title: "Test the settings first",
                                                            detail: "SAML SSO can be enabled once a test login with the active settings has passed. Use \"Update and Test SAML Configuration\".",
                                                            actor: actor))
        }
        await audit(on ? "sso.enable" : "sso.disable", org.name, actor: actor, result: "success", reason: nil, requestID: requestID)
        if !on { await SettingsAPI.endSessions(of: org.name, shared) }
        await SettingsSync.refresh(shared)
        return LocalResponse(status: .seeOther, headers: [("Location", "/organizations/\(org.name)/settings/sso?done=\(on ? "enabled" : "disabled")"),
                                                          ("Cache-Control", "no-store")], body: [])
    }

    /// A one-time link: the console cookie for whoever follows it first.
    private func linkLogin(_ head: HTTPRequestHead, org: GatewayConfiguration.Organization, sessions: SealedCodec<Session>, now: Int64,
                           requestID: String) async -> LocalResponse {
        let token = RequestFields.query(head.uri)["token"] ?? ""
        let link: AdminToken?
        do {
            link = token.hasPrefix("ssgl_") ? try await StoreCalls.traced("consume_admin_link", { try await shared.store.consumeAdminLink(hash: try AdminToken.hash(token), now: now) }) : nil
        } catch {
            return Self.page(.serviceUnavailable, ConsolePage.refused(organization: org.name, title: "The state store did not answer",
                                                                      detail: "Try the link again in a moment (it was not used up).", actor: nil))
        }
        guard let link, link.organization == org.name else {
            await audit("admin.link", org.name, actor: nil, result: "failure", reason: "link_used_or_expired", requestID: requestID)
            return Self.page(.unauthorized, ConsolePage.refused(organization: org.name, title: "This link no longer works",
                                                                detail: "A console link works once, for 15 minutes. Ask the gateway's operator for a new one (ssogate admin-link).",
                                                                actor: nil))
        }
        let actor = "admin-link:\(link.id)"
        await audit("admin.link", org.name, actor: actor, result: "success", reason: nil, requestID: requestID)
        guard let sealed = try? sessions.seal(Session(organization: org.name, actor: actor, expires: now + Self.lifetime)) else {
            return .text(.internalServerError, "could not open the console session")
        }
        let secure = shared.runtime.configuration.publicURLIsHTTPS ? "; Secure" : ""
        // SameSite=Strict: no other site can make a browser send it; the path keeps it off
        // the application's pages.
        let cookie = "\(Self.cookieName)=\(sealed); Path=/organizations/\(org.name)/settings; Max-Age=\(Self.lifetime); HttpOnly; SameSite=Strict\(secure)"
        return LocalResponse(status: .seeOther, headers: [("Location", "/organizations/\(org.name)/settings/sso"), ("Set-Cookie", cookie),
                                                          ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")], body: [])
    }

    // MARK: - Audit page

    private func audit(_ head: HTTPRequestHead, org: GatewayConfiguration.Organization, actor: String) async -> LocalResponse {
        let query = RequestFields.query(head.uri)
        let filters = ["action", "result", "since", "until"].reduce(into: [String: String]()) { $0[$1] = query[$1] ?? "" }
        let q = AuditQuery(organization: org.name, limit: query["format"] == nil ? 200 : 10_000,
                           action: filters["action"].flatMap { $0.isEmpty ? nil : $0 }, result: filters["result"].flatMap { $0.isEmpty ? nil : $0 },
                           since: filters["since"].flatMap(SettingsAPI.parseTime), until: filters["until"].flatMap(SettingsAPI.parseTime))
        do {
            let events = try await StoreCalls.traced("events", { try await shared.store.events(q) })
            if let format = query["format"], let export = SettingsAPI.export(events, format: format, organization: org.name) { return export }
            let rows = events.map {
                ConsolePage.AuditRow(time: $0.time, action: $0.action, result: $0.result, reason: $0.reason, actor: $0.actor, subject: $0.subject,
                                     ip: $0.ip, requestID: $0.requestID)
            }
            return Self.page(.ok, ConsolePage.audit(organization: org.name, rows: rows, filters: filters, actor: actor))
        } catch {
            return Self.page(.serviceUnavailable, ConsolePage.refused(organization: org.name, title: "The state store did not answer",
                                                                      detail: "The audit log cannot be read right now (\(error)).", actor: actor))
        }
    }

    // MARK: - Helpers

    private func view(_ org: GatewayConfiguration.Organization, runtime: GatewayRuntime, form: ConsolePage.Form?, problems: [SettingsProblem],
                      notice: String?, csrf: String, actor: String) -> ConsolePage.Settings {
        let base = runtime.configuration.publicURL + "/organizations/" + org.name + "/saml"
        let stored = org.managed == .console ? runtime.settings[org.name] : nil
        // File-managed: the file's settings, shown as the active ones.
        let active = stored == nil ? org.idpSettings : stored?.active
        var page = ConsolePage.Settings(
            organization: org.name, id: org.id, managedInConsole: org.managed == .console, spEntityID: base + "/metadata",
            acsURL: base + "/consume", metadataURL: "/organizations/\(org.name)/saml/metadata", enabled: stored?.enabled ?? org.saml.enabled,
            active: active, activeTested: stored?.activeTested, draft: stored?.draft, draftTested: stored?.draftTested,
            form: form ?? ConsolePage.Form(stored?.draft ?? active), problems: problems, notice: notice, csrf: csrf, actor: actor)
        // The mapping in force (the runtime's organization has the console's applied).
        if let mapping = org.roleMapping { page.roles = ConsolePage.Roles(StoredRoleMapping(mapping)) }
        page.policy = ConsolePage.Policy(org.access)
        return page
    }

    private func audit(_ action: String, _ organization: String, actor: String?, result: String, reason: String?, subject: String? = nil,
                       requestID: String) async {
        await SettingsSync.audit(shared, AuditEvent(time: Int64(shared.clock().timeIntervalSince1970), action: action, organization: organization,
                                                    actor: actor, result: result, reason: reason, subject: subject, ip: peer, requestID: requestID))
    }

    static func page(_ status: HTTPResponseStatus, _ html: String) -> LocalResponse {
        // Never framed (clickjacking a settings form), never cached.
        LocalResponse(status: status, headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                                                ("X-Frame-Options", "DENY"), ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")],
                      body: Array(html.utf8))
    }
}
