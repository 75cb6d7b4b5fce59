import Config
import CryptoCore
import Foundation
import HTTPWire
import NIOHTTP1
import SAML
import Sessions
import XMLDSig

/// What to do with a request for application content.
package enum AccessDecision {
    /// Forward; `identity` are the headers the upstream gets (none when anonymous), valid
    /// until `expires` (the grant's end in Unix seconds; a WebSocket is closed then); `claims`
    /// the same identity for a signed `X-SSO-Assertion`.
    /// `sessions`: the IDs of the grants it relies on (a WebSocket is closed when one ends);
    /// `token`: the access token's id, when a token (not a session) let it in.
    case forward(identity: [(String, String)], expires: Int64?, claims: UpstreamClaims?, sessions: [String] = [], token: String? = nil)
    /// Forward anonymously; the HTML answer should carry the "Login with SSO" banner.
    case banner(organization: String, loginURL: String)
    case redirect(location: String)
    /// No grant: `401` with the JSON body; `badToken` when an access token was presented
    /// and is unknown, revoked, expired or another organization's (a failed attempt).
    case unauthorized(organization: String, body: [UInt8], badToken: Bool)
    /// A read-only access token asked to change something: `403`.
    case forbidden(body: [UInt8])
    /// The organization's access policy refuses this member here: `403`, a page or JSON.
    case refused(AccessRefusal)
    /// The path names two organizations, depending on how `;` parameters are read.
    case ambiguousPath
}

/// A grant's forward decision for one organization and resource group, as a loop's cache
/// keeps it, with what the method check (`enforce_roles`) needs. A class: a request takes it
/// from the cache with one reference count, not one per field.
package final class Granted {
    package let forward: AccessDecision
    /// The role is `read` under `enforce_roles`: only `GET`, `HEAD`, `OPTIONS`.
    package let readsOnly: Bool
    let grant: SessionGrant
    let vouchedBy: String
    let role: String?

    init(forward: AccessDecision, readsOnly: Bool, grant: SessionGrant, vouchedBy: String, role: String?) {
        self.forward = forward
        self.readsOnly = readsOnly
        self.grant = grant
        self.vouchedBy = vouchedBy
        self.role = role
    }
}

/// The SSO flow (docs/CONTRACT.md "HTTP endpoints" and "A request for protected content"), as plain
/// functions from a request's parts to a response or decision: no sockets, clock injected.
package struct SSOFlow: Sendable {
    package let configuration: GatewayConfiguration
    package let organizations: [String: GatewayConfiguration.Organization]
    package let validators: [String: ResponseValidator]
    /// Each organization's IdP SSO URL: configured, or from its metadata.
    package let signOnURLs: [String: String]
    /// Each organization's IdP Single Logout URL (HTTP-Redirect), when it has one.
    package let idpSLOURLs: [String: String]
    package let spKeys: [String: PrivateKey]
    package let sessions: SessionCookies
    package let loginStates: SealedCodec<LoginState>
    package let clock: @Sendable () -> Date
    package let random: @Sendable (Int) throws -> [UInt8]
    /// In a flow built from organizations' draft settings (the console's test), the draft
    /// revision each organization's settings are; empty in the flow that serves members.
    package let draftRevisions: [String: Int64]
    /// Identifies this flow to the per-loop session caches: sessions opened and filtered by
    /// another flow (before a reload) are not taken as this one's.
    package let cacheOwner = SessionCache.Owner()
    /// Sessions ended (logout, SLO, revoke): their grants count for nothing.
    package let revocations: Revocations
    /// The live access tokens.
    package let tokens: TokenIndex
    /// The organizations' access policies, compiled.
    package let rules: AccessRules
    /// What protects the top-level `upstream`'s paths, and each route's (`routes[]`, in order).
    package let defaultScope: RouteScope
    package let routeScopes: [RouteScope]

    package static let loginStateSeconds: Int64 = 600

    /// - Parameter metadata: IdP metadata fetched from `metadata_url`, per organization: its
    ///   signing certificates are trusted beside the configured ones, and it supplies the SSO
    ///   URL and the issuer when the configuration does not.
    package init(configuration: GatewayConfiguration, replayCache: ReplayCache, metadata: [String: IdPMetadata] = [:],
                 draftRevisions: [String: Int64] = [:], revocations: Revocations = Revocations(), tokens: TokenIndex = TokenIndex(),
                 clock: @escaping @Sendable () -> Date = { Date() },
                 random: @escaping @Sendable (Int) throws -> [UInt8] = { try SecureRandom().bytes($0) }) {
        self.configuration = configuration
        self.revocations = revocations
        self.tokens = tokens
        self.draftRevisions = draftRevisions
        self.clock = clock
        self.random = random
        organizations = Dictionary(uniqueKeysWithValues: configuration.organizations.map { ($0.name, $0) })
        rules = AccessRules(organizations: organizations)
        defaultScope = RouteScope(patterns: configuration.protectedPaths, organizations: organizations)
        routeScopes = RouteScope.routes(of: configuration, organizations: organizations)
        var validators: [String: ResponseValidator] = [:]
        var keys: [String: PrivateKey] = [:]
        var signOnURLs: [String: String] = [:]
        var sloURLs: [String: String] = [:]
        for org in configuration.organizations {
            let base = configuration.publicURL + "/organizations/" + org.name + "/saml"
            let fetched = metadata[org.name]
            // Configured certificates were parsed and checked at load; fetched ones are
            // added (a rollover announced in metadata is trusted without a restart).
            var certificates = org.saml.certificates
            for certificate in fetched?.signingCertificates ?? [] where !certificates.contains(where: { $0.der == certificate.der }) {
                certificates.append(certificate)
            }
            let trusted = certificates.compactMap { try? TrustedKey(certificate: $0) }
            signOnURLs[org.name] = org.saml.signOnURL ?? fetched?.redirectSSOURL
            sloURLs[org.name] = org.saml.sloURL ?? fetched?.redirectSLOURL
            let settings = ServiceProviderSettings(
                entityID: base + "/metadata", acsURL: base + "/consume", idpEntityID: org.saml.idpEntityID ?? fetched?.entityID,
                trusted: trusted, allowInsecureSHA1: org.saml.allowSHA1, allowIdPInitiated: org.saml.allowIdPInitiated,
                clockSkew: TimeInterval(configuration.clockSkew.components.seconds),
                decryptionKey: org.saml.spKeyPair?.key, requireEncryptedAssertions: org.saml.requireEncryptedAssertions)
            validators[org.name] = ResponseValidator(settings: settings, replayCache: replayCache, clock: clock)
            keys[org.name] = org.saml.spKeyPair?.key
        }
        self.validators = validators
        self.signOnURLs = signOnURLs
        idpSLOURLs = sloURLs
        spKeys = keys
        sessions = SessionCookies(secrets: configuration.session.secrets, random: random)
        loginStates = SealedCodec(secrets: configuration.session.secrets, purpose: "login-state", random: random)
    }

    package var cookieName: String { configuration.session.cookieName }
    package var loginCookieName: String { configuration.session.cookieName + "_login" }
    private var secure: String { configuration.publicURLIsHTTPS ? "; Secure" : "" }

    package func ssoURL(_ org: String, returnTo: String?) -> String {
        configuration.publicURL + "/organizations/" + org + "/sso" + (returnTo.map { "?return_to=" + Self.formEncode($0) } ?? "")
    }

    // MARK: - GET /organizations/{org}/sso

    package func startLogin(organization name: String, query: [String: String]) -> LocalResponse {
        guard let org = organizations[name] else { return .text(.notFound, "unknown organization") }
        // `draft=REV`: the console's test of saved settings (always a test, never a session).
        let draft = query["draft"].flatMap { Int64($0) }
        if let draft, draftRevisions[name] != draft {
            return .text(.conflict, "these settings were changed after the test was started: start the test again from the console")
        }
        let test = query["test"] == "1" || draft != nil
        guard org.saml.enabled || test else {
            return .text(.notFound, "SAML SSO is not enabled for this organization")
        }
        let now = clock()
        let base = configuration.publicURL + "/organizations/" + org.name + "/saml"
        let returnTo = Protection.safeReturnTo(query["return_to"] ?? "/" + org.name)
        guard let signOnURL = signOnURLs[org.name] else {
            return .text(.serviceUnavailable, "the IdP's metadata has not been loaded yet; try again shortly")
        }
        do {
            let request = try AuthnRequest(destination: signOnURL, acsURL: base + "/consume", spEntityID: base + "/metadata",
                                           issueInstant: now, random: { try random(20) })
            let state = LoginState(organization: org.name, requestID: request.id, returnTo: returnTo, test: test,
                                   expires: Int64(now.timeIntervalSince1970) + Self.loginStateSeconds, draft: draft)
            let sealed = try loginStates.seal(state)
            let location = try request.redirectURL(to: signOnURL, relayState: returnTo, signingKey: spKeys[org.name])
            // SameSite=None so the cookie survives the IdP's cross-site POST back; browsers
            // count http://localhost and 127.0.0.1 as secure for the Secure flag.
            let cookie = "\(loginCookieName)=\(sealed); Path=/organizations/\(org.name)/saml/consume; Max-Age=\(Self.loginStateSeconds); HttpOnly; SameSite=None; Secure"
            return LocalResponse(status: .found, headers: [("Location", location), ("Set-Cookie", cookie), ("Cache-Control", "no-store")], body: [])
        } catch {
            return .text(.internalServerError, "could not start the login")
        }
    }

    // MARK: - POST /organizations/{org}/saml/consume

    package struct ConsumeOutcome: Sendable {
        package var response: LocalResponse
        /// `success` or the reason code, for logs and metrics.
        package var result: String
        package var detail: String?
        /// Who logged in (the NameID), for the audit log; nil when the login failed.
        package var subject: String?
    }

    /// A login either decided without the replay store (refused before rule 8), or waiting
    /// for its IDs to be spent: `finish` turns the store's outcome into the answer.
    package enum ConsumeStep: Sendable {
        case done(ConsumeOutcome)
        /// `session`: the session the login begins, recorded before its IDs are spent (none
        /// for a test).
        case spend([ReplaySpend], session: SessionRecord?, finish: @Sendable (StoreOutcome) -> ConsumeOutcome)
    }

    /// The draft revision a login-state cookie was started for, when it is a test of draft
    /// settings: the ACS then answers with the flow built from the drafts.
    package func draftTested(organization: String, cookies: [String: Substring]) -> Int64? {
        guard let state = cookies[loginCookieName].flatMap({ loginStates.open($0) }), state.organization == organization,
              state.expires > Int64(clock().timeIntervalSince1970) else { return nil }
        return state.draft
    }

    /// Validates the POST, then leaves the spending of its IDs to the caller's store.
    package func consume(organization name: String, form: [String: String], cookies: [String: Substring], acceptsJSON: Bool,
                         requestID: String) -> ConsumeStep {
        guard let org = organizations[name], let validator = validators[name] else {
            return .done(ConsumeOutcome(response: .text(.notFound, "unknown organization"), result: "unknown_organization"))
        }
        let now = clock()
        let state = cookies[loginCookieName].flatMap { loginStates.open($0) }
            .flatMap { $0.organization == name && $0.expires > Int64(now.timeIntervalSince1970) ? $0 : nil }
        let clearState = "\(loginCookieName)=; Path=/organizations/\(name)/saml/consume; Max-Age=0; HttpOnly; SameSite=None; Secure"
        guard org.saml.enabled || state?.test == true else {
            return .done(ConsumeOutcome(response: .text(.notFound, "SAML SSO is not enabled for this organization"), result: "sso_disabled"))
        }
        // Test mode ("Update and Test") never issues a session, whatever comes back: while a
        // test's login state is in this browser, and always while SSO is disabled (only a
        // test can reach a disabled organization's ACS), the answer is the diagnostic page.
        let testing = state?.test == true || !org.saml.enabled
        guard let samlResponse = form["SAMLResponse"] else {
            return .done(failure(.init("malformed", "no SAMLResponse in the form"), org: name, test: testing,
                                 acceptsJSON: acceptsJSON, requestID: requestID, clear: clearState))
        }
        let checked: (ValidatedAssertion, [ReplaySpend])
        do {
            checked = try validator.check(samlResponse: samlResponse, expectedRequestID: state?.requestID)
            try Self.checkIdentityValues(checked.0, org: org)
        } catch {
            return .done(failure(error, org: name, test: testing, acceptsJSON: acceptsJSON, requestID: requestID, clear: clearState))
        }
        let existingSession = cookies[cookieName].map(String.init)
        let seconds = Int64(now.timeIntervalSince1970)
        // A member the access policy refuses begins no session; the login's IDs are spent
        // all the same, so the response cannot be posted again once the policy changes.
        let values = checked.0.attributes[org.roleMapping?.attribute ?? "groups"] ?? []
        if !testing, let refusal = rules.admitsLogin(org, email: Self.email(of: checked.0), values: values) {
            let who = AccessRefusal(organization: name, refusal: refusal, subject: checked.0.nameID, email: Self.email(of: checked.0), vouchedBy: name,
                                    role: nil, resourceGroup: nil, method: "POST", session: AccessRefusal.noSession)
            return .spend(checked.1, session: nil) { outcome in
                switch outcome {
                case .spent:
                    return self.refusedLogin(who, org: org, acceptsJSON: acceptsJSON, requestID: requestID, clear: clearState)
                case .alreadySpent(let spend):
                    return self.failure(spend.refusal, org: name, test: false, acceptsJSON: acceptsJSON, requestID: requestID, clear: clearState)
                case .unavailable:
                    return self.failure(SAMLError("state_store_unavailable", "the replay store could not record this login's IDs"), org: name,
                                        test: false, acceptsJSON: acceptsJSON, requestID: requestID, clear: clearState)
                }
            }
        }
        let begun: SessionRecord?
        do {
            begun = testing ? nil : SessionRecord(id: try SessionGrant.newID(), organization: name, subject: checked.0.nameID,
                                                  sessionIndex: checked.0.sessionIndex, created: seconds, expires: seconds + org.sessionTTL.components.seconds)
        } catch {
            return .done(ConsumeOutcome(response: .text(.internalServerError, "could not begin a session"), result: "internal_error"))
        }
        return .spend(checked.1, session: begun) { outcome in
            switch outcome {
            case .spent:
                return self.loggedIn(checked.0, org: org, state: state, testing: testing, form: form, existingSession: existingSession,
                                     begun: begun, acceptsJSON: acceptsJSON, requestID: requestID, clearState: clearState, now: now)
            case .alreadySpent(let spend):
                return self.failure(spend.refusal, org: name, test: testing, acceptsJSON: acceptsJSON,
                                    requestID: requestID, clear: clearState)
            case .unavailable:
                return self.failure(SAMLError("state_store_unavailable", "the replay store could not record this login's IDs"), org: name,
                                    test: testing, acceptsJSON: acceptsJSON, requestID: requestID, clear: clearState)
            }
        }
    }

    /// The answer to a validated login whose IDs are spent: the session (or the test page).
    private func loggedIn(_ assertion: ValidatedAssertion, org: GatewayConfiguration.Organization, state: LoginState?, testing: Bool,
                          form: [String: String], existingSession: String?, begun: SessionRecord?, acceptsJSON: Bool, requestID: String,
                          clearState: String, now: Date) -> ConsumeOutcome {
        let name = org.name
        // An unsolicited response (the IdP's tile) answers no request: a login-state cookie
        // left from an abandoned login must not choose its destination or test mode.
        let solicited = assertion.inResponseTo == nil ? nil : state
        let groupsAttribute = org.roleMapping?.attribute ?? "groups"
        let groups = assertion.attributes[groupsAttribute] ?? []
        let role = org.roleMapping.flatMap { AccessRules.organizationRole(Set(groups), mapping: $0, policy: org.access)?.name }
        let email = Self.email(of: assertion)
        guard !testing, let begun else {
            let policy = rules.admitsLogin(org, email: email, values: groups)
            let page = DiagnosticPage.success(organization: name, assertion: assertion, role: role, email: email, back: consolePage(name),
                                              refusedBy: policy?.rawValue)
            return ConsumeOutcome(response: LocalResponse(status: .ok, headers: [("Content-Type", "text/html; charset=utf-8"),
                                                                                 ("Set-Cookie", clearState), ("Cache-Control", "no-store")],
                                                          body: Array(page.utf8)), result: "test_success", subject: assertion.nameID)
        }
        var session = live(existingSession.flatMap { sessions.open(Substring($0), now: now) }) ?? Session()
        session.grants[name] = SessionGrant(id: begun.id, subject: assertion.nameID, email: email, groups: groups, role: role,
                                            sessionIndex: assertion.sessionIndex, nameIDFormat: assertion.nameIDFormat,
                                            expires: begun.expires, seen: begun.created)
        let returnTo = solicited?.returnTo ?? Protection.safeReturnTo(form["RelayState"] ?? "/" + name)
        var headers: [(String, String)] = [("Location", returnTo), ("Cache-Control", "no-store"), ("Set-Cookie", clearState)]
        do {
            if let value = try sessions.seal(session, now: now, newest: name) {
                headers.append(("Set-Cookie", sessionCookie(value, session: session, now: now)))
            }
        } catch {
            // Answering success without a cookie would send the user round the login again.
            return failure(SAMLError(SAMLError.sessionTooLarge.code, "\(error)"), org: name, test: false, acceptsJSON: acceptsJSON,
                           requestID: requestID, clear: clearState)
        }
        return ConsumeOutcome(response: LocalResponse(status: .seeOther, headers: headers, body: []), result: "success", subject: assertion.nameID)
    }

    /// 403 for a login the access policy refuses: the refusal page (or JSON), no session.
    private func refusedLogin(_ refusal: AccessRefusal, org: GatewayConfiguration.Organization, acceptsJSON: Bool, requestID: String,
                              clear: String) -> ConsumeOutcome {
        var response = refusedResponse(refusal, html: !acceptsJSON, requestID: requestID)
        response.headers.append(("Set-Cookie", clear))
        return ConsumeOutcome(response: response, result: refusal.refusal.rawValue,
                              detail: "the access policy refuses \(refusal.email ?? refusal.subject)", subject: refusal.subject)
    }

    /// The `403` of an access-policy refusal: the page for a browser, JSON otherwise.
    package func refusedResponse(_ refusal: AccessRefusal, html: Bool, requestID: String) -> LocalResponse {
        let policy = organizations[refusal.organization]?.access ?? .open
        if html {
            let page = refusal.html(policy, requestID: requestID, signIn: "/organizations/\(refusal.organization)/sso")
            return LocalResponse(status: .forbidden, headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")],
                                 body: Array(page.utf8))
        }
        return LocalResponse(status: .forbidden, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
                             body: refusal.json(policy, requestID: requestID))
    }

    /// A login start or ACS post refused before any work (LoginGuard): 503 `login_busy` or
    /// 429 `login_rate_limited`, with `Retry-After`.
    package func turnedAway(_ refusal: LoginGuard.Refusal, organization: String, acceptsJSON: Bool, requestID: String) -> LocalResponse {
        let status: HTTPResponseStatus = refusal == .busy ? .serviceUnavailable : .tooManyRequests
        var response: LocalResponse
        if acceptsJSON {
            let body = "{\"error\":\"\(refusal.code)\",\"organization\":\"\(Self.jsonEscape(organization))\",\"request_id\":\"\(requestID)\"}"
            response = LocalResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(body.utf8))
        } else {
            let page = DiagnosticPage.turnedAway(organization: organization, code: refusal.code, seconds: refusal.retryAfter,
                                                 requestID: requestID, retry: ssoURL(organization, returnTo: nil))
            response = LocalResponse(status: status, headers: [("Content-Type", "text/html; charset=utf-8")], body: Array(page.utf8))
        }
        response.headers += [("Retry-After", "\(refusal.retryAfter)"), ("Cache-Control", "no-store")]
        return response
    }

    func sessionCookie(_ value: String, session: Session, now: Date) -> String {
        let longest = session.grants.values.map(\.expires).max() ?? Int64(now.timeIntervalSince1970)
        let maxAge = max(0, longest - Int64(now.timeIntervalSince1970))
        return "\(cookieName)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Lax\(secure)"
    }

    /// Where a test of draft settings came from (the console), for its result page's link.
    private func consolePage(_ org: String) -> String? {
        draftRevisions[org] == nil ? nil : "/organizations/\(org)/settings/sso"
    }

    private func failure(_ error: SAMLError, org: String, test: Bool, acceptsJSON: Bool, requestID: String, clear: String) -> ConsumeOutcome {
        let badInput: Set<String> = ["malformed", "too_large", "dtd_forbidden"]
        // A store that cannot record the login is the gateway's fault, not the user's: 503.
        let status: HTTPResponseStatus = badInput.contains(error.code) ? .badRequest
            : error.code == "state_store_unavailable" ? .serviceUnavailable : .forbidden
        let response: LocalResponse
        if acceptsJSON {
            let body = "{\"error\":\"\(error.code)\",\"organization\":\"\(org)\",\"request_id\":\"\(requestID)\"}"
            response = LocalResponse(status: status, headers: [("Content-Type", "application/json"), ("Set-Cookie", clear)], body: Array(body.utf8))
        } else {
            let page = test ? DiagnosticPage.failure(organization: org, error: error, requestID: requestID, back: consolePage(org))
                : DiagnosticPage.loginFailed(organization: org, code: error.code, requestID: requestID, retry: ssoURL(org, returnTo: nil))
            response = LocalResponse(status: status, headers: [("Content-Type", "text/html; charset=utf-8"), ("Set-Cookie", clear),
                                                               ("Cache-Control", "no-store")], body: Array(page.utf8))
        }
        return ConsumeOutcome(response: response, result: error.code, detail: error.detail)
    }

    /// The values that become identity headers (email, groups, the role mapping's
    /// attribute) refuse the login when they hold a control character; the NameID was
    /// checked by the validator. Never silently altered or dropped.
    package static func checkIdentityValues(_ assertion: ValidatedAssertion, org: GatewayConfiguration.Organization) throws(SAMLError) {
        let used = [email(of: assertion)].compactMap { $0 } + (assertion.attributes[org.roleMapping?.attribute ?? "groups"] ?? [])
        if let bad = used.first(where: { !IdentityValue.isClean($0) }) {
            throw SAMLError("invalid_identity_value", "an identity attribute value holds a control character (\(bad.utf8.count) bytes)")
        }
    }

    package static func email(of assertion: ValidatedAssertion) -> String? {
        for key in ["email", "mail", "emailAddress", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"] {
            if let value = assertion.attributes[key]?.first { return value }
        }
        return assertion.nameIDFormat?.hasSuffix("emailAddress") == true ? assertion.nameID : nil
    }

    // MARK: - Metadata and logout

    package func spMetadata(organization name: String) -> LocalResponse {
        guard let org = organizations[name] else { return .text(.notFound, "unknown organization") }
        let xml = SPMetadata.xml(publicURL: configuration.publicURL, organization: org.name, certificate: org.saml.spKeyPair?.certificate)
        return LocalResponse(status: .ok, headers: [("Content-Type", "application/samlmetadata+xml")], body: Array(xml.utf8))
    }


    // MARK: - Protected content

    /// The decision, and a Set-Cookie value for the session cookie when the browser's must
    /// change: cleared when it is tampered, sealed by a retired secret or wholly expired;
    /// sealed again without the grants the live configuration no longer honours.
    /// - Parameters:
    ///   - sessionCookie: the value of the session cookie, when the request has one.
    ///   - cache: this event loop's sessions already opened; a cookie found there skips the
    ///     opening, one opened whole is added.
    /// - Parameters:
    ///   - credential: what the request's `Authorization` carries, when it has one.
    ///   - tokenCache: this event loop's access tokens already looked up.
    ///   - route: the index of the request's route in `routes[]`; nil: the top-level upstream's.
    package func decide(path: Substring, uri: String, method: String, accept: String?,
                        sessionCookie value: Substring?, cache: SessionCache? = nil,
                        credential: Credential? = nil, tokenCache: TokenCache? = nil, route: Int? = nil) -> (AccessDecision, setCookie: String?) {
        let now = clock()
        let seconds = Int64(now.timeIntervalSince1970)
        var session: Session?
        var setCookie: String?
        var remembered: SessionCache.Remembered?
        if let value {
            let generation = revocations.generation
            if let hit = cache?.remembered(for: value, owner: cacheOwner, generation: generation, now: seconds) {
                remembered = hit
                session = hit.session
            } else {
                let opened = sessions.open(value, now: now)
                let (kept, reseal) = current(opened, now: seconds)
                session = kept
                if kept?.grants.isEmpty ?? true {
                    setCookie = clearedSessionCookie
                } else if let kept, reseal {
                    setCookie = (try? sessions.seal(kept, now: now)).flatMap { $0 }.map { sessionCookie($0, session: kept, now: now) }
                        ?? clearedSessionCookie
                } else if let kept {
                    remembered = cache?.remember(kept, for: value, owner: cacheOwner, generation: generation, until: servesUntil(kept))
                }
            }
        }
        let scope = route.map { routeScopes[$0] } ?? defaultScope
        return (decision(path: path, uri: uri, method: method, accept: accept, session: session, now: now, memo: remembered,
                         credential: credential, tokenCache: tokenCache, scope: scope), setCookie)
    }

    /// The Set-Cookie value that removes the session cookie.
    package var clearedSessionCookie: String { "\(cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax\(secure)" }

    /// A grant counts only while its organization is configured and enabled (disabling or
    /// removing an organization ends its grants at once: docs/CONTRACT.md, revised rule), its
    /// session was not ended, and it was used within its organization's idle timeout.
    package func live(_ session: Session?) -> Session? {
        current(session, now: Int64(clock().timeIntervalSince1970)).session
    }

    /// `live`, and whether the cookie must be sealed again: a grant was dropped, or, under
    /// an idle timeout, a grant's activity time is a minute old (so the store is never
    /// written per request: the cookie carries the time).
    package func current(_ session: Session?, now: Int64) -> (session: Session?, reseal: Bool) {
        guard let session else { return (nil, false) }
        var kept = session
        var reseal = false
        for (name, grant) in session.grants {
            guard let org = organizations[name], org.saml.enabled, !revocations.contains(grant.id) else {
                kept.grants[name] = nil
                reseal = true
                continue
            }
            guard let idle = org.sessionIdleTimeout?.components.seconds else { continue }
            if now - grant.seen >= idle {
                kept.grants[name] = nil
                reseal = true
            } else if now - grant.seen >= Self.activityStep {
                kept.grants[name]?.seen = now
                reseal = true
            }
        }
        return (kept, reseal)
    }

    /// How often a grant's activity time moves (a cookie sealed again) under an idle timeout.
    package static let activityStep: Int64 = 60

    /// Until when a session opened now may be served from a loop's cache: its earliest
    /// expiry, or sooner, when a grant's activity time is due to move.
    private func servesUntil(_ session: Session) -> Int64? {
        session.grants.map { name, grant in
            organizations[name]?.sessionIdleTimeout == nil ? grant.expires : min(grant.expires, grant.seen + Self.activityStep)
        }.min()
    }

    /// - Parameter memo: where the decisions already made for this session are kept (a
    ///   session from the loop's cache); a forward decision found there is reused.
    private func decision(path: Substring, uri: String, method: String, accept: String?, session: Session?, now: Date,
                          memo: SessionCache.Remembered? = nil, credential: Credential? = nil, tokenCache: TokenCache? = nil, scope: RouteScope) -> AccessDecision {
        let org: GatewayConfiguration.Organization
        switch scope.match(path) {
        case .organization(let matched): org = matched
        case .ambiguous: return .ambiguousPath
        case .unprotected:
            // Not protected: no identity, since an identity travels only with the
            // organization whose IdP vouched for it; only which organizations this request
            // holds grants for, and in the signed assertion each grant with its own subject.
            if let known = memo?.unprotected { return known }
            // Only grants the access policy would let log in count (their email still in the
            // allowed domains, some role row still theirs).
            let grants = session?.grants.sorted { $0.key < $1.key }.filter { name, grant in
                organizations[name].map { rules.admitsLogin($0, email: grant.email, values: grant.groups) == nil } ?? false
            } ?? []
            guard !grants.isEmpty else { return .forward(identity: [], expires: nil, claims: nil) }
            let forward = AccessDecision.forward(identity: [("X-SSO-Organizations", grants.map(\.key).joined(separator: ","))],
                                                 expires: grants.map(\.value.expires).min(),
                                                 claims: UpstreamClaims(grant: nil, organization: nil,
                                                                        grants: grants.map { UpstreamClaims.Grant(organization: $0.key, $0.value) }),
                                                 sessions: grants.map(\.value.id))
            memo?.unprotected = forward
            return forward
        }
        let inGroup = rules.resourceGroup(of: path, in: org)
        let group = inGroup?.name
        let key = inGroup?.key ?? org.name
        if let known = memo?.decisions[key] { return checked(known, org: org, method: method, path: path, group: group) }
        if let session {
            if let grant = session.grant(for: org.name, now: now) {
                return memberDecision(grant, org: org, group: group, method: method, path: path) { memo?.decisions[key] = $0 }
            }
            // Another organization's member, let in as a listed external collaborator.
            if !org.access.externalCollaborators.isEmpty {
                for (name, grant) in session.grants.sorted(by: { $0.key < $1.key }) where name != org.name && grant.expires > Int64(now.timeIntervalSince1970) {
                    switch rules.admit(org, grant: grant, vouchedBy: name, resourceGroup: group) {
                    case .allow(let role, _):
                        let granted = self.granted(grant, org: org, vouchedBy: name, role: role)
                        memo?.decisions[key] = granted
                        return checked(granted, org: org, method: method, path: path, group: group)
                    case .refuse(.resourceGroupDenied):
                        return .refused(AccessRefusal(organization: org.name, refusal: .resourceGroupDenied, subject: grant.subject, email: grant.email,
                                                      vouchedBy: name, role: nil, resourceGroup: group, method: method, session: grant.id))
                    case .refuse:
                        continue
                    }
                }
            }
        }
        switch credential {
        case .token(let text):
            return tokenDecision(text, org: org, method: method, path: path, now: Int64(now.timeIntervalSince1970), cache: tokenCache)
        case .foreign where org.appCredentials == .pass:
            // The application's own credential: the application decides; no identity.
            return .forward(identity: [], expires: nil, claims: nil)
        case .foreign, nil:
            break
        }
        let optional = org.access.sso == .optional
        guard Protection.isBrowserNavigation(method: method, accept: accept) else {
            // `sso: optional`: API clients are forwarded anonymously instead of refused.
            return optional ? .forward(identity: [], expires: nil, claims: nil) : unauthorized(org.name, error: "sso_required", badToken: false)
        }
        // Optional SSO never sends a member away from content they may read anonymously.
        switch optional ? .banner : org.unauthenticated {
        case .redirect: return .redirect(location: "/organizations/" + org.name + "/sso?return_to=" + Self.formEncode(uri))
        case .banner: return .banner(organization: org.name, loginURL: "/organizations/" + org.name + "/sso?return_to=" + Self.formEncode(uri))
        }
    }

    /// Where `grant` stands in its own organization outside resource groups (who may make
    /// tokens, who is an org admin): the access policy's verdict.
    package func standing(_ grant: SessionGrant, in org: GatewayConfiguration.Organization) -> AccessRules.Verdict {
        rules.admit(org, grant: grant, vouchedBy: org.name, resourceGroup: nil)
    }

    /// A member's grant (a session's, or the one a token carries) on their organization's
    /// content in `group`: the policy's verdict, an allowed one handed to `keep` for the cache.
    /// `token`: the id of the access token that carries the grant, for the access log.
    func memberDecision(_ grant: SessionGrant, org: GatewayConfiguration.Organization, group: String?, method: String, path: Substring,
                        token: String? = nil, keep: (Granted) -> Void) -> AccessDecision {
        switch rules.admit(org, grant: grant, vouchedBy: org.name, resourceGroup: group) {
        case .allow(let role, _):
            let granted = self.granted(grant, org: org, vouchedBy: org.name, role: role, token: token)
            keep(granted)
            return checked(granted, org: org, method: method, path: path, group: group)
        case .refuse(let refusal):
            return .refused(AccessRefusal(organization: org.name, refusal: refusal, subject: grant.subject, email: grant.email,
                                          vouchedBy: org.name, role: nil, resourceGroup: group, method: method, session: grant.id))
        }
    }

    /// The forward decision for `grant` on `org`'s content with `role`, as the caches keep it.
    /// An external collaborator's groups are their own organization's: never sent as this
    /// one's (an upstream mapping `hf-admins` to admin would make another company's admins
    /// admins here); their role here is `X-SSO-Role`.
    func granted(_ grant: SessionGrant, org: GatewayConfiguration.Organization, vouchedBy: String, role: GatewayConfiguration.Role?,
                 token: String? = nil) -> Granted {
        let external = vouchedBy == org.name ? nil : vouchedBy
        var sent = grant
        if external != nil { sent.groups = [] }
        let forward = AccessDecision.forward(identity: Self.identity(sent, organization: org.name, role: role?.name, vouchedBy: external),
                                             expires: grant.expires,
                                             claims: UpstreamClaims(grant: sent, organization: org.name, role: role?.name, vouchedBy: external, grants: []),
                                             sessions: [grant.id], token: token)
        return Granted(forward: forward, readsOnly: AccessRules.onlyReads(role, org.access), grant: grant, vouchedBy: vouchedBy, role: role?.name)
    }

    /// A kept decision for a request with `method`: a `read` role under `enforce_roles` only reads.
    func checked(_ granted: Granted, org: GatewayConfiguration.Organization, method: String, path: Substring, group: String?) -> AccessDecision {
        guard granted.readsOnly, !AccessRules.reads(method: method, path: path) else { return granted.forward }
        return .refused(AccessRefusal(organization: org.name, refusal: .readOnlyRole, subject: granted.grant.subject, email: granted.grant.email,
                                      vouchedBy: granted.vouchedBy, role: granted.role, resourceGroup: group, method: method, session: granted.grant.id))
    }

    /// Identity headers from a grant, for the organization of the matched protected path,
    /// with the role the policy gives there; `vouchedBy` names the organization whose IdP
    /// vouched for an external collaborator (`X-SSO-Identity-Organization`).
    /// Values are sent byte-exact when a header can carry them, else percent-encoded
    /// (IdentityHeaderValue); logins with control characters were refused.
    package static func identity(_ grant: SessionGrant, organization: String, role: String?, vouchedBy: String? = nil) -> [(String, String)] {
        var headers: [(String, String)] = [("X-Forwarded-User", IdentityHeaderValue.encode(grant.subject))]
        if let email = grant.email { headers.append(("X-Forwarded-Email", IdentityHeaderValue.encode(email))) }
        if !grant.groups.isEmpty {
            headers.append(("X-Forwarded-Groups", grant.groups.map(IdentityHeaderValue.encode).joined(separator: ",")))
        }
        headers.append(("X-SSO-Organization", organization))
        if let vouchedBy { headers.append(("X-SSO-Identity-Organization", vouchedBy)) }
        if let role { headers.append(("X-SSO-Role", role)) }
        return headers
    }

    package static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    package static func jsonEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
