import Access
import Config
import Foundation
import HTTPWire
import Logging
import NIOHTTP1
import Sessions
import StateStore

/// `/_ssogate/logout` (docs/CONTRACT.md, the logout row and "Sessions, logout and Single
/// Logout"): `GET` shows the button; `POST` with a same-origin proof ends the browser's
/// sessions on every replica (and, asked to, every session of the same people), clears the
/// cookie, audits `sso.logout`, and tells the IdP (SP-initiated Single Logout) when an
/// organization can.
struct Logout {
    let shared: GatewayShared
    let peer: String?

    /// What the page's CSRF token binds: the sessions it may end, a few hours.
    struct Intent: Codable {
        let sessions: [String]
        let expires: Int64
    }

    func answer(_ head: HTTPRequestHead, body: [UInt8], requestID: String) async -> LocalResponse {
        let flow = shared.runtime.flow
        let now = shared.clock()
        let seconds = Int64(now.timeIntervalSince1970)
        let intents = SealedCodec<Intent>(secrets: flow.configuration.session.secrets, purpose: "logout-csrf")
        // Every grant the cookie carries, even one no longer live: logging out ends them all.
        let session = RequestFields.cookies(head.headers)[flow.cookieName].flatMap { flow.sessions.open($0, now: now) }
        let grants = (session?.grants ?? [:]).sorted { $0.key < $1.key }
        let ids = grants.map(\.value.id)

        guard head.method == .POST else {
            let csrf = (try? intents.seal(Intent(sessions: ids, expires: seconds + 4 * 3600))) ?? ""
            return Self.page(.ok, LogoutPage.confirm(signedIn: grants.map { ($0.key, $0.value.subject) }, csrf: csrf))
        }
        let form = RequestFields.form(String(decoding: body, as: UTF8.self))
        guard proven(head, token: form["csrf"].flatMap { intents.open($0) }, ids: ids, now: seconds, publicURL: flow.configuration.publicURL) else {
            shared.logger.warning("logout refused: no same-origin proof", metadata: ["peer": "\(peer ?? "-")", "request_id": "\(requestID)"])
            return Self.page(.forbidden, LogoutPage.refused())
        }
        let everywhere = form["everywhere"] == "on"
        var storeAnswers = true
        if !ids.isEmpty {
            let ended = await SessionSync.end(shared, .ids(ids), known: grants.map { ($0.value.id, $0.value.expires) })
            shared.metrics.sessionsEnded(ended?.count ?? ids.count, how: "logout")
            storeAnswers = ended != nil
        }
        for (organization, grant) in grants {
            // Once the store did not answer, the rest are queued without waiting on it again.
            if everywhere {
                if storeAnswers, let ended = await SessionSync.end(shared, .subject(organization: organization, subject: grant.subject)) {
                    shared.metrics.sessionsEnded(ended.count, how: "everywhere")
                } else if storeAnswers {
                    storeAnswers = false
                } else {
                    SessionSync.queue(shared, .subject(organization: organization, subject: grant.subject))
                }
            }
            // Through the bounded queue: a store that is down must not hold the logout up twice.
            shared.audit(AuditEvent(time: seconds, action: "sso.logout", organization: organization, actor: grant.subject,
                                    result: "success", reason: everywhere ? "everywhere" : nil, subject: grant.subject,
                                    ip: peer, requestID: requestID))
        }
        // The session cookie, and the console's of the same organizations (an admin who logs
        // out is out of the console too).
        var cookies = [("Set-Cookie", flow.clearedSessionCookie)]
        cookies += grants.map { ("Set-Cookie", "\(Console.cookieName)=; Path=/organizations/\($0.key)/settings; Max-Age=0; HttpOnly; SameSite=Strict") }
        // SP-initiated Single Logout: the IdP is told, and answers at .../saml/slo.
        if let slo = flow.startSingleLogout(grants: grants.map { ($0.key, $0.value) }) {
            return LocalResponse(status: .seeOther, headers: [("Location", slo.location), ("Cache-Control", "no-store")] + cookies
                                     + [("Set-Cookie", slo.cookie)], body: [])
        }
        return LocalResponse(status: .seeOther, headers: [("Location", "/"), ("Cache-Control", "no-store")] + cookies, body: [])
    }

    /// A browser's own headers say this site sent the POST, or it carries the page's token
    /// for these sessions; a browser that says another site sent it is refused whatever
    /// else it carries.
    private func proven(_ head: HTTPRequestHead, token: Intent?, ids: [String], now: Int64, publicURL: String) -> Bool {
        if SiteProof.crossSite(head.headers, publicURL: publicURL) { return false }
        if SiteProof.sameSite(head.headers, publicURL: publicURL) { return true }
        guard let token, token.expires > now else { return false }
        return Set(token.sessions) == Set(ids)
    }

    static func page(_ status: HTTPResponseStatus, _ html: String) -> LocalResponse {
        LocalResponse(status: status, headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                                                ("X-Frame-Options", "DENY"), ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")],
                      body: Array(html.utf8))
    }
}
