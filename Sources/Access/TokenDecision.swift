import Config
import Sessions

/// What a request's `Authorization` carries, as far as the gateway is concerned.
package enum Credential: Sendable {
    /// One of the gateway's access tokens (`Bearer ssg_…`, or Basic with it as password).
    case token(Substring)
    /// Something else: the application's own credential.
    case foreign

    package var isToken: Bool {
        if case .token = self { return true }
        return false
    }

    /// From the request's `Authorization` field, when there is one.
    package init?(authorization: Substring?) {
        guard let authorization else { return nil }
        self = AccessToken.credential(authorization).map(Credential.token) ?? .foreign
    }
}

extension SSOFlow {
    /// A request for `org`'s content with an access token and no session grant for `org`.
    func tokenDecision(_ text: Substring, org: GatewayConfiguration.Organization, method: String, path: Substring, now: Int64,
                       cache: TokenCache?) -> AccessDecision {
        let entry = cache?.entry(text, index: tokens)
        guard let token = entry?.token ?? tokens.token(text: text), token.organization == org.name, token.expires > now else {
            return unauthorized(org.name, error: "invalid_token", badToken: true)
        }
        if token.readOnly, !AccessRules.reads(method: method, path: path) {
            return .forbidden(body: Array("{\"error\":\"token_read_only\",\"organization\":\"\(org.name)\"}".utf8))
        }
        // Its use, for the token list: once a minute per event loop.
        let minute = now / 60 * 60
        if entry?.minute != minute {
            entry?.minute = minute
            tokens.used(token.id, minute: minute)
        }
        // The member's grant as the token carries it, through the same policy as a session's.
        let inGroup = rules.resourceGroup(of: path, in: org)
        let group = inGroup?.name
        let key = inGroup?.key ?? org.name
        if entry?.owner !== cacheOwner {
            entry?.owner = cacheOwner
            entry?.decisions.removeAll()
        }
        if let known = entry?.decisions[key] { return checked(known, org: org, method: method, path: path, group: group) }
        return memberDecision(token.grant, org: org, group: group, method: method, path: path, token: token.id) { entry?.decisions[key] = $0 }
    }

    /// The `401` JSON: why, where to log in, and where a CLI gets a token.
    func unauthorized(_ organization: String, error: String, badToken: Bool) -> AccessDecision {
        let body = "{\"error\":\"\(error)\",\"organization\":\"\(organization)\",\"sso_url\":\"\(Self.jsonEscape(ssoURL(organization, returnTo: nil)))\","
            + "\"token_url\":\"\(Self.jsonEscape(configuration.publicURL + "/organizations/" + organization + "/settings/tokens"))\"}"
        return .unauthorized(organization: organization, body: Array(body.utf8), badToken: badToken)
    }
}
