import Access
import Config
import HTTPWire
import NIOHTTP1
import Sessions

/// Forward-auth (docs/CONTRACT.md "Forward-auth"): `/_ssogate/auth`, asked by an ingress that
/// proxies the application itself (nginx `auth_request`, Traefik ForwardAuth, Caddy
/// `forward_auth`, Envoy `ext_authz`), about a request it describes. The decision is the
/// built-in proxy's (`SSOFlow.decide`: protected paths, sessions, tokens, the access policy);
/// only the answer's shape differs:
/// - allowed: `200` with the identity headers for the ingress to copy upstream, every one
///   of them named (empty when it does not apply), so a client's copy is replaced by nothing;
/// - a browser without a session: `302` to the login (the banner cannot be injected into a
///   response this gateway never sees), or for nginx, which relays only `2xx`/`401`/`403`,
///   `401` with the login in `Location`;
/// - anything else: the `401`/`403` the proxy would answer, with its body; for nginx the
///   JSON body also in `X-SSO-Error`, which its snippet returns (nginx drops the body).
/// Only `trusted_proxies` may ask: the answer says who a cookie or token belongs to.
extension RequestPlanner {
    static let forwardAuthPath = "/_ssogate/auth"
    /// The identity headers an ingress copies from an allowed answer.
    static let identityNames = ["X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-SSO-Organization",
                                "X-SSO-Identity-Organization", "X-SSO-Organizations", "X-SSO-Role"]

    static func isForwardAuth(_ uri: String) -> Bool {
        let path = pathOnly(uri)
        return path == forwardAuthPath || path.hasPrefix(forwardAuthPath + "/")
    }

    func forwardAuth(_ received: HTTPRequestHead, label: inout RequestLabel) -> LocalResponse {
        let runtime = shared.runtime(on: loop)
        guard runtime.isTrusted(peer: peerBytes) else {
            rejected(.forbidden, reason: "forward-auth request from a peer outside trusted_proxies")
            return .plain(.forbidden, "forward-auth answers the proxies listed in trusted_proxies only")
        }
        let described: ForwardedRequest
        switch ForwardedRequest.read(received, endpoint: Self.forwardAuthPath) {
        case .success(let request): described = request
        case .failure(let problem):
            rejected(.badRequest, reason: problem.rawValue)
            return .plain(.badRequest, problem.rawValue)
        }
        let head: HTTPRequestHead
        switch RequestTarget.normalise(described.head) {
        case .success(let normalised): head = normalised
        case .failure(let rejection):
            rejected(.badRequest, reason: "forward-auth: " + rejection.rawValue)
            return .plain(.badRequest, rejection.rawValue)
        }
        let credential = Credential(authorization: head.headers.first(name: "authorization")?[...])
        let (decision, sessionCookie) = runtime.flow.decide(
            path: pathOnly(head.uri), uri: head.uri, method: head.method.rawValue, accept: head.headers.first(name: "accept"),
            sessionCookie: RequestFields.cookie(named: runtime.flow.cookieName, in: head.headers), cache: loop.sessions,
            credential: credential, tokenCache: loop.tokens,
            route: runtime.router.route(host: head.headers.first(name: "host"), path: pathOnly(head.uri)))
        let clearing: [(String, String)] = sessionCookie.map { [("Set-Cookie", $0)] } ?? []
        shared.metrics.forwardAuthDecided(result: Self.result(decision))
        label.name(decision)
        switch decision {
        case .forward(let identity, _, _, _, _):
            // Every name, empty when it does not apply: an ingress that copies a listed header
            // then replaces the client's copy with nothing (Traefik, and Caddy 2.6, which
            // otherwise copies its own placeholder text) instead of leaving it.
            let absent = Self.identityNames.filter { name in !identity.contains { $0.0.lowercased() == name.lowercased() } }
            return LocalResponse(status: .ok, headers: identity + absent.map { ($0, "") } + clearing + [("Cache-Control", "no-store")], body: [])
        case .banner(_, let loginURL):
            return login(loginURL, nginx: described.onlyStatusCodes, clearing: clearing)
        case .redirect(let location):
            return login(location, nginx: described.onlyStatusCodes, clearing: clearing)
        case .ambiguousPath, .unauthorized, .refused, .forbidden:
            var (response, _) = answer(decision, head: head, runtime: runtime, clearing: clearing, html: true, requestID: label.id)
            if described.onlyStatusCodes, response.headers.contains(where: { $0.0 == "Content-Type" && $0.1 == "application/json" }) {
                response.headers.append(("X-SSO-Error", String(decoding: response.body, as: UTF8.self)))
            }
            return response
        }
    }

    /// Where a browser goes to log in: a `302`, or nginx's `401` with the same `Location`.
    private func login(_ location: String, nginx: Bool, clearing: [(String, String)]) -> LocalResponse {
        LocalResponse(status: nginx ? .unauthorized : .found, headers: [("Location", location), ("Cache-Control", "no-store")] + clearing, body: [])
    }

    private static func result(_ decision: AccessDecision) -> String {
        switch decision {
        case .forward(let identity, _, _, _, _): return identity.isEmpty ? "anonymous" : "allowed"
        case .banner, .redirect: return "login"
        case .unauthorized: return "unauthorized"
        case .refused, .forbidden: return "refused"
        case .ambiguousPath: return "bad_request"
        }
    }
}
