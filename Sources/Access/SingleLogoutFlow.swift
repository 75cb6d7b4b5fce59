import Config
import Foundation
import HTTPWire
import NIOHTTP1
import SAML
import Sessions

/// Single Logout at `/organizations/{org}/saml/slo` (docs/CONTRACT.md "Sessions, logout and
/// Single Logout"), as functions from what arrived to what to answer; the gateway spends
/// IDs and ends sessions in the store between them.
extension SSOFlow {
    /// Which LogoutRequest of the gateway this browser waits for an answer to.
    package struct LogoutState: Codable, Sendable {
        let organization: String
        let requestID: String
        let expires: Int64
    }

    package var logoutCookieName: String { cookieName + "_logout" }

    /// The checks of messages arriving for `organization`.
    package func singleLogout(_ organization: String) -> SingleLogout? {
        guard let validator = validators[organization] else { return nil }
        return SingleLogout(settings: validator.settings, sloURL: configuration.publicURL + "/organizations/\(organization)/saml/slo", clock: clock)
    }

    /// SP-initiated: after a logout here, the IdP is told for the first organization (by
    /// name) whose grant is ended, that has an SP key to sign with and whose IdP has a
    /// Single Logout URL. The redirect there and the logout-state cookie; nil when none has.
    package func startSingleLogout(grants: [(organization: String, grant: SessionGrant)]) -> (location: String, cookie: String)? {
        let now = clock()
        for (name, grant) in grants.sorted(by: { $0.organization < $1.organization }) {
            guard let key = spKeys[name], let destination = idpSLOURLs[name] else { continue }
            let base = configuration.publicURL + "/organizations/" + name + "/saml"
            guard let (url, id) = try? SingleLogout.requestURL(to: destination, issuer: base + "/metadata", nameID: grant.subject,
                                                               nameIDFormat: grant.nameIDFormat, sessionIndex: grant.sessionIndex,
                                                               relayState: nil, key: key, now: now, random: { try random(20) }),
                  let sealed = try? SealedCodec<LogoutState>(secrets: configuration.session.secrets, purpose: "logout-state", random: random)
                      .seal(LogoutState(organization: name, requestID: id, expires: Int64(now.timeIntervalSince1970) + Self.loginStateSeconds))
            else { continue }
            // SameSite=None: an IdP may answer with a cross-site POST.
            let cookie = "\(logoutCookieName)=\(sealed); Path=/organizations/\(name)/saml/slo; Max-Age=\(Self.loginStateSeconds); HttpOnly; SameSite=None; Secure"
            return (url, cookie)
        }
        return nil
    }

    /// The IdP's LogoutResponse to this browser's logout: a page saying how it went.
    package func finishSingleLogout(organization name: String, message: ReceivedSAMLMessage, cookies: [String: Substring]) -> (LocalResponse, result: String) {
        let clear = "\(logoutCookieName)=; Path=/organizations/\(name)/saml/slo; Max-Age=0; HttpOnly; SameSite=None; Secure"
        let state = cookies[logoutCookieName]
            .flatMap { SealedCodec<LogoutState>(secrets: configuration.session.secrets, purpose: "logout-state").open($0) }
            .flatMap { $0.organization == name && $0.expires > Int64(clock().timeIntervalSince1970) ? $0 : nil }
        guard let checks = singleLogout(name) else { return (.text(.notFound, "unknown organization"), "unknown_organization") }
        do {
            let response = try checks.response(message, expectedRequestID: state?.requestID)
            let page = LogoutPage.done(organization: name, idp: response.succeeded ? .loggedOut : .refused(response.status))
            return (Self.page(.ok, page, clear), response.succeeded ? "success" : "idp_status_not_success")
        } catch {
            // Logged out here already; only the IdP's answer could not be trusted.
            return (Self.page(.ok, LogoutPage.done(organization: name, idp: .unverified(error.code, error.detail)), clear), error.code)
        }
    }

    /// IdP-initiated, once the request's ID is spent and its sessions ended: the browser's
    /// grant for `organization` dropped, and the LogoutResponse sent back to the IdP (a
    /// page when the IdP has no Single Logout URL to send it to).
    /// - Parameter ended: whether the store took the ending (else the IdP hears `Responder`:
    ///   the sessions end once the store answers, not now).
    package func answerLogoutRequest(_ request: LogoutRequestMessage, organization name: String, relayState: String?,
                                     cookie: Substring?, ended: Bool = true) -> LocalResponse {
        let now = clock()
        var headers: [(String, String)] = [("Cache-Control", "no-store")]
        if let cookie, var session = sessions.open(cookie, now: now), session.grants[name] != nil {
            session.grants[name] = nil
            let value = session.grants.isEmpty ? nil : (try? sessions.seal(session, now: now)).flatMap { $0 }
            headers.append(("Set-Cookie", value.map { sessionCookie($0, session: session, now: now) } ?? clearedSessionCookie))
        }
        let base = configuration.publicURL + "/organizations/" + name + "/saml"
        guard let destination = idpSLOURLs[name],
              let url = try? SingleLogout.responseURL(to: destination, issuer: base + "/metadata", inResponseTo: request.id,
                                                      status: ended ? SingleLogout.success : SingleLogout.responder, relayState: relayState,
                                                      key: spKeys[name], now: now, random: { try random(20) }) else {
            return Self.page(.ok, LogoutPage.done(organization: name, idp: .startedThere), nil, headers)
        }
        return LocalResponse(status: .found, headers: [("Location", url)] + headers, body: [])
    }

    /// A LogoutRequest refused: nothing ended, the reason said.
    package func refusedLogoutRequest(organization: String, _ error: SAMLError) -> LocalResponse {
        let status: HTTPResponseStatus = ["malformed", "too_large", "too_complex", "dtd_forbidden"].contains(error.code) ? .badRequest : .forbidden
        return Self.page(status, LogoutPage.requestRefused(organization: organization, reason: error.code, detail: error.detail), nil)
    }

    static func page(_ status: HTTPResponseStatus, _ html: String, _ cookie: String?, _ extra: [(String, String)] = []) -> LocalResponse {
        var headers: [(String, String)] = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        if let cookie { headers.append(("Set-Cookie", cookie)) }
        return LocalResponse(status: status, headers: headers + extra.filter { $0.0 != "Cache-Control" }, body: Array(html.utf8))
    }
}
