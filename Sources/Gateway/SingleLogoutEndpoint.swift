import Access
import Config
import Foundation
import HTTPWire
import Logging
import NIOCore
import NIOHTTP1
import SAML
import Sessions
import StateStore

/// `/organizations/{org}/saml/slo` (docs/CONTRACT.md "Sessions, logout and Single Logout"): an
/// IdP's LogoutRequest (HTTP-Redirect or HTTP-POST) checked on a login worker like an ACS
/// post, its ID spent, then every session of its NameID and SessionIndex ended on every
/// gateway and a LogoutResponse sent back; or the IdP's LogoutResponse to this browser's
/// logout. Counted against the login rates: an unauthenticated client makes the gateway
/// verify a signature here.
extension RequestPlanner {
    func singleLogout(organization: String, head: HTTPRequestHead, body: ByteBuffer, requestID: String, trace: SpanParent? = nil,
                      on loop: EventLoop) -> EventLoopFuture<LocalResponse> {
        let runtime = shared.runtime(on: self.loop)
        let flow = runtime.flow
        let shared = self.shared
        let peer = peerText
        if let refusal = shared.logins.admit(client: clientAddress(head, runtime: runtime), now: shared.clock().timeIntervalSince1970) {
            shared.metrics.loginTurnedAway(endpoint: "slo", reason: refusal.code)
            return loop.makeSucceededFuture(.text(refusal == .busy ? .serviceUnavailable : .tooManyRequests, "too many requests: try again shortly"))
        }
        let fields: [String: String]
        let message: ReceivedSAMLMessage
        if head.method == .GET {
            fields = RequestFields.query(head.uri)
            message = .redirect(query: head.uri.firstIndex(of: "?").map { String(head.uri[head.uri.index(after: $0)...]) } ?? "")
        } else {
            fields = RequestFields.form(String(buffer: body))
            message = .post(form: fields)
        }
        guard let checks = flow.singleLogout(organization) else { return loop.makeSucceededFuture(.text(.notFound, "unknown organization")) }
        let cookies = RequestFields.cookies(head.headers)
        func audit(_ result: String, reason: String?, subject: String?) {
            shared.audit(AuditEvent(time: Int64(shared.clock().timeIntervalSince1970), action: "sso.logout", organization: organization,
                                    actor: subject, result: result, reason: reason, subject: subject, ip: peer, requestID: requestID))
        }
        if fields["SAMLResponse"] != nil {
            // The answer to this browser's logout: the sessions ended already.
            guard let checked = shared.logins.run(on: loop, { flow.finishSingleLogout(organization: organization, message: message, cookies: cookies) }) else {
                return loop.makeSucceededFuture(.text(.serviceUnavailable, "too many requests: try again shortly"))
            }
            return checked.map { response, result in
                audit(result == "success" ? "success" : "failure", reason: result == "success" ? "slo_response" : result, subject: nil)
                return response
            }
        }
        guard fields["SAMLRequest"] != nil else {
            return loop.makeSucceededFuture(.text(.badRequest, "a SAMLRequest or SAMLResponse is expected here"))
        }
        let checked = shared.logins.run(on: loop) { () -> Result<(LogoutRequestMessage, ReplaySpend), SAMLError> in
            do throws(SAMLError) { return .success(try checks.request(message)) } catch { return .failure(error) }
        }
        guard let checked else { return loop.makeSucceededFuture(.text(.serviceUnavailable, "too many requests: try again shortly")) }
        return checked.flatMap { outcome in
            Self.answered(on: loop, trace) {
                let request: LogoutRequestMessage
                do throws(SAMLError) {
                    let (parsed, spend) = try outcome.get()
                    switch await StoreCalls.traced("spend", { await shared.store.spend([spend], now: shared.clock()) }) {
                    case .spent: request = parsed
                    case .alreadySpent(let spent): throw spent.refusal
                    case .unavailable: throw SAMLError("state_store_unavailable", "the replay store could not record this logout's ID")
                    }
                } catch {
                    audit("failure", reason: error.code, subject: nil)
                    shared.logger.warning("logout request refused", metadata: [
                        "organization": "\(organization)", "reason": "\(error.code)", "detail": "\(error.detail)", "request_id": "\(requestID)",
                    ])
                    return flow.refusedLogoutRequest(organization: organization, error)
                }
                let ended = await SessionSync.end(shared, .sessionIndexes(organization: organization, subject: request.nameID,
                                                                          indexes: request.sessionIndexes))
                shared.metrics.sessionsEnded(ended?.count ?? 0, how: "slo")
                // `slo_revokes_tokens`: the member's access tokens end with the IdP session too.
                if ended != nil, runtime.configuration.organization(named: organization)?.saml.sloRevokesTokens == true,
                   let revoked = try? await StoreCalls.traced("revoke_tokens", {
                       try await shared.store.revokeTokens(organization: organization, subject: request.nameID) }), revoked > 0 {
                    await TokenSync.poll(shared, after: -1)
                }
                audit(ended == nil ? "failure" : "success", reason: ended == nil ? "state_store_unavailable" : "slo", subject: request.nameID)
                return flow.answerLogoutRequest(request, organization: organization, relayState: fields["RelayState"],
                                                cookie: cookies[flow.cookieName], ended: ended != nil)
            }
        }
    }
}
