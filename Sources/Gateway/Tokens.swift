import Access
import Config
import Foundation
import HTTPWire
import NIOHTTP1
import Sessions
import StateStore

/// Members' access tokens (docs/CONTRACT.md "Access tokens for CLIs and git"): the console page
/// `/organizations/{org}/settings/tokens` and `/api/organizations/{org}/tokens[/{id}]`.
///
/// Who: a member with a live grant for the organization (their session cookie) makes, lists
/// and revokes their own tokens; a member whose role is `admin` sees and revokes everyone's,
/// and so does a bearer of `ssogate admin-token` on the API. Making or revoking needs a
/// same-origin proof besides the cookie (the page's CSRF token, or the browser's
/// `Origin`/`Sec-Fetch-Site`). Every change is audited and in force here at once, on the
/// other gateways within TokenSync's poll.
struct Tokens {
    let shared: GatewayShared
    let peer: String?

    enum Page: Equatable { case list, create, revoke }

    static func page(_ rest: String, method: HTTPMethod) -> Page? {
        switch (rest, method) {
        case ("settings/tokens", .GET), ("settings/tokens", .HEAD): return .list
        case ("settings/tokens", .POST): return .create
        case ("settings/tokens/revoke", .POST): return .revoke
        default: return nil
        }
    }

    /// `/api/organizations/{org}/tokens` and `.../tokens/{id}`: the organization and the ID.
    static func apiEndpoint(_ path: Substring) -> (organization: String, id: String?)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5 || parts.count == 6, parts[0].isEmpty, parts[1] == "api", parts[2] == "organizations", !parts[3].isEmpty,
              parts[4] == "tokens" else { return nil }
        if parts.count == 6 { return parts[5].isEmpty ? nil : (String(parts[3]), String(parts[5])) }
        return (String(parts[3]), nil)
    }

    /// What a page's CSRF token binds: one member, one organization, a few hours.
    struct Intent: Codable {
        let organization: String
        let subject: String
        let expires: Int64
    }

    /// The member asking: their live grant for `org`.
    /// The member's grant, while the access policy lets them into the organization.
    private func member(_ head: HTTPRequestHead, org: GatewayConfiguration.Organization) -> SessionGrant? {
        let flow = shared.runtime.flow
        guard let value = RequestFields.cookies(head.headers)[flow.cookieName],
              let grant = flow.live(flow.sessions.open(value, now: shared.clock()))?.grants[org.name],
              case .allow = flow.standing(grant, in: org) else { return nil }
        return grant
    }

    private func isAdmin(_ grant: SessionGrant?, in org: GatewayConfiguration.Organization) -> Bool {
        guard let grant else { return false }
        return shared.runtime.flow.standing(grant, in: org) == .allow(role: .admin, external: nil)
    }

    private var now: Int64 { Int64(shared.clock().timeIntervalSince1970) }

    // MARK: - Console page

    func answerPage(_ head: HTTPRequestHead, body: [UInt8], organization name: String, page: Page, requestID: String) async -> LocalResponse {
        let runtime = shared.runtime
        guard let org = runtime.configuration.organization(named: name), org.saml.enabled else { return .text(.notFound, "unknown organization") }
        guard let grant = member(head, org: org) else {
            return Console.page(.unauthorized, ConsolePage.signIn(organization: org.name, loginURL: "/organizations/\(org.name)/sso?return_to=/organizations/\(org.name)/settings/tokens"))
        }
        let admin = isAdmin(grant, in: org)
        let intents = SealedCodec<Intent>(secrets: runtime.configuration.session.secrets, purpose: "tokens-csrf")
        let csrf = (try? intents.seal(Intent(organization: org.name, subject: grant.subject, expires: now + 4 * 3600))) ?? ""
        var created: (text: String, token: AccessToken)?
        var notice: String?
        if head.method == .POST {
            let form = RequestFields.form(String(decoding: body, as: UTF8.self))
            guard let intent = form["csrf"].flatMap({ intents.open($0) }), intent.organization == org.name, intent.subject == grant.subject,
                  intent.expires > now, !SiteProof.crossSite(head.headers, publicURL: runtime.configuration.publicURL) else {
                return Console.page(.forbidden, ConsolePage.refused(organization: org.name, title: "This form has expired",
                                                                    detail: "Open the tokens page again and repeat.", actor: grant.subject))
            }
            do {
                switch page {
                case .create:
                    let days = Int64(form["days"] ?? "") ?? 30
                    switch try await create(grant: grant, org: org, name: form["name"] ?? "", lifetime: days * 86400, readOnly: form["read_only"] == "on",
                                            requestID: requestID) {
                    case .success(let made): created = made
                    case .failure(let problem): notice = problem.message
                    }
                case .revoke:
                    notice = try await revoke(id: form["id"] ?? "", org: org.name, by: grant.subject, admin: admin, requestID: requestID) != nil
                        ? "Token revoked: it no longer works, here or on any other gateway." : "No such token of yours."
                case .list:
                    break
                }
            } catch {
                notice = "The state store did not answer: nothing changed (\(error))."
            }
        }
        let tokens = (try? await StoreCalls.traced("list_tokens", { try await shared.store.listTokens(organization: org.name, subject: admin ? nil : grant.subject) })) ?? []
        let view = TokensPage.View(organization: org.name, member: grant.subject, admin: admin, tokens: tokens, csrf: csrf,
                                   maxDays: Int(runtime.configuration.tokenMaxTTL.components.seconds / 86400), created: created,
                                   notice: notice, publicURL: runtime.configuration.publicURL)
        return Console.page(.ok, TokensPage.page(view))
    }

    // MARK: - API

    /// `GET|POST /api/organizations/{org}/tokens`, `DELETE /api/organizations/{org}/tokens/{id}`.
    func answerAPI(_ head: HTTPRequestHead, body: [UInt8], organization name: String, id: String?, requestID: String) async -> LocalResponse {
        let runtime = shared.runtime
        guard let org = runtime.configuration.organization(named: name), org.saml.enabled else {
            return SettingsAPI.json(.notFound, ["error": "unknown_organization"])
        }
        // A member by cookie, or an admin token.
        let grant = member(head, org: org)
        var adminToken: AdminToken?
        if grant == nil, let bearer = SettingsAPI.bearer(head), bearer.hasPrefix("ssga_") {
            adminToken = try? await StoreCalls.traced("admin_token", { try await shared.store.adminToken(hash: try AdminToken.hash(bearer), now: now) })
            guard adminToken?.organization == org.name else { return SettingsAPI.json(.forbidden, ["error": "forbidden"]) }
        }
        guard grant != nil || adminToken != nil else {
            return SettingsAPI.json(.unauthorized, ["error": "unauthorized", "detail": "log in with SSO (the session cookie), or an admin token"])
        }
        // Changes by cookie need a same-origin proof: a cookie alone is what another site's form has.
        if head.method != .GET, grant != nil, !SiteProof.sameSite(head.headers, publicURL: runtime.configuration.publicURL) {
            return SettingsAPI.json(.forbidden, ["error": "same_origin_required", "detail": "send Origin: \(runtime.configuration.publicURL)"])
        }
        let admin = adminToken != nil || isAdmin(grant, in: org)
        let actor = grant?.subject ?? "admin-token:\(adminToken!.id)"
        do {
            switch (head.method, id) {
            case (.GET, nil):
                let tokens = try await StoreCalls.traced("list_tokens", { try await shared.store.listTokens(organization: org.name, subject: admin ? nil : grant?.subject) })
                return SettingsAPI.json(.ok, ["tokens": tokens.map(TokenRow.init)])
            case (.POST, nil):
                guard let grant else { return SettingsAPI.json(.forbidden, ["error": "member_only", "detail": "a token is made by the member it acts as"]) }
                struct Body: Decodable {
                    let name: String?, expiresInDays: Int64?, readOnly: Bool?
                    enum CodingKeys: String, CodingKey { case name, expiresInDays = "expires_in_days", readOnly = "read_only" }
                }
                guard let request = try? JSONDecoder().decode(Body.self, from: Data(body.isEmpty ? Array("{}".utf8) : body)) else {
                    return SettingsAPI.json(.unprocessableEntity, ["error": "invalid_body", "detail": "{\"name\", \"expires_in_days\", \"read_only\"}"])
                }
                switch try await create(grant: grant, org: org, name: request.name ?? "", lifetime: (request.expiresInDays ?? 30) * 86400,
                                        readOnly: request.readOnly ?? false, requestID: requestID) {
                case .success(let made):
                    return SettingsAPI.json(.created, Created(token: made.text, id: made.token.id, expiresAt: SettingsAPI.isoTime(made.token.expires)))
                case .failure(let problem):
                    return SettingsAPI.json(.unprocessableEntity, ["error": "invalid_token_request", "detail": problem.message])
                }
            case (.DELETE, let id?):
                guard try await revoke(id: id, org: org.name, by: actor, subject: grant?.subject, admin: admin, requestID: requestID) != nil else {
                    return SettingsAPI.json(.notFound, ["error": "unknown_token"])
                }
                return SettingsAPI.json(.ok, ["revoked": id])
            default:
                return SettingsAPI.json(.methodNotAllowed, ["error": "method_not_allowed"])
            }
        } catch {
            return SettingsAPI.unavailable(error)
        }
    }

    // MARK: - Operations

    struct Problem: Error { let message: String }

    private func create(grant: SessionGrant, org: GatewayConfiguration.Organization, name: String, lifetime: Int64, readOnly: Bool,
                        requestID: String) async throws -> Result<(text: String, token: AccessToken), Problem> {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        let most = shared.runtime.configuration.tokenMaxTTL.components.seconds
        guard !name.isEmpty, name.count <= 100 else { return .failure(Problem(message: "Give the token a name (at most 100 characters).")) }
        guard lifetime >= 86400, lifetime <= most else {
            return .failure(Problem(message: "A token lasts from 1 to \(most / 86400) days."))
        }
        let made = try AccessToken.make(from: grant, organization: org.name, name: name, readOnly: readOnly, now: now, lifetime: lifetime)
        try await StoreCalls.traced("create_token", { try await shared.store.createToken(made.token) })
        shared.tokens.apply([made.token], now: now)
        shared.audit(AuditEvent(time: now, action: "token.create", organization: org.name, actor: grant.subject, result: "success",
                                reason: readOnly ? "read_only" : nil, subject: grant.subject, ip: peer, requestID: requestID))
        return .success(made)
    }

    /// Revokes the token `id` of `org` when `by` may: its member (`subject`), or an admin.
    private func revoke(id: String, org: String, by actor: String, subject: String? = nil, admin: Bool, requestID: String) async throws -> AccessToken? {
        let owner = subject ?? actor
        guard let token = try await StoreCalls.traced("list_tokens", { try await shared.store.listTokens(organization: org, subject: admin ? nil : owner) }).first(where: { $0.id == id }),
              let revoked = try await StoreCalls.traced("revoke_token", { try await shared.store.revokeToken(id: token.id, organization: org) }) else { return nil }
        shared.tokens.apply([revoked], now: now)
        shared.audit(AuditEvent(time: now, action: "token.revoke", organization: org, actor: actor, result: "success", reason: nil,
                                subject: revoked.subject, ip: peer, requestID: requestID))
        return revoked
    }

    struct Created: Encodable {
        let token: String, id: String, expiresAt: String
        enum CodingKeys: String, CodingKey { case token, id, expiresAt = "expires_at" }
    }

    struct TokenRow: Encodable {
        let id: String, name: String, subject: String, readOnly: Bool, created: String, expiresAt: String, lastUsed: String?, revoked: Bool
        init(_ t: AccessToken) {
            id = t.id
            name = t.name
            subject = t.subject
            readOnly = t.readOnly
            created = SettingsAPI.isoTime(t.created)
            expiresAt = SettingsAPI.isoTime(t.expires)
            lastUsed = t.lastUsed.map(SettingsAPI.isoTime)
            revoked = t.revoked
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(name, forKey: .name)
            try c.encode(subject, forKey: .subject)
            try c.encode(readOnly, forKey: .readOnly)
            try c.encode(created, forKey: .created)
            try c.encode(expiresAt, forKey: .expiresAt)
            try c.encode(lastUsed, forKey: .lastUsed)
            try c.encode(revoked, forKey: .revoked)
        }
        enum CodingKeys: String, CodingKey {
            case id, name, subject, readOnly = "read_only", created, expiresAt = "expires_at", lastUsed = "last_used", revoked
        }
    }
}
