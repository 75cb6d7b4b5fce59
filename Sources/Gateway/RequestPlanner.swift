import Access
import Config
import Foundation
import HTTPWire
import Logging
import NIOCore
import NIOHTTP1
import Proxy
import SAML
import Sessions
import StateStore

/// The protocol-neutral half of serving a request: from its head to an answer made here,
/// a form to collect (the ACS), or an exchange to proxy. HTTP/1.1 connections and HTTP/2
/// streams both ask it, so every SSO rule applies to both in one place.
struct RequestPlanner {
    enum Plan {
        /// Answer locally; `close` ends an HTTP/1 connection afterwards (a rejected request).
        case respond(LocalResponse, head: HTTPRequestHead, close: Bool)
        /// The ACS or the settings API: read the (bounded) body, then call `answerCollected`.
        case collectBody(organization: String, head: HTTPRequestHead)
        case proxy(Exchange, expectContinue: Bool)
    }

    let shared: GatewayShared
    /// The event loop's own state: its copy of the runtime, its session cache.
    let loop: LoopContext
    /// The client's address as text and as bytes (for `trusted_proxies`).
    let peerText: String?
    let peerBytes: [UInt8]?
    /// `https` on a TLS listener; what `X-Forwarded-Proto` says when no trusted proxy did.
    let scheme: String

    init(shared: GatewayShared, loop: LoopContext, peer: SocketAddress?, scheme: String) {
        self.shared = shared
        self.loop = loop
        self.scheme = scheme
        peerText = peer?.ipAddress
        // From the text NIO gives, not the sockaddr: its fields' module depends on which C
        // headers a build happens to load first (MemberImportVisibility).
        peerBytes = peerText.flatMap(IPAddressText.parse)
    }

    /// - Parameter bodyFraming: how the request body is delimited when the protocol says so
    ///   itself (HTTP/2); `nil` reads it from the HTTP/1 fields, refusing ambiguous framing.
    /// - Parameter label: set to the request's id, then to whom the SSO decision found it is
    ///   for, for the access log.
    func plan(_ received: HTTPRequestHead, start: NIODeadline, bodyFraming: RequestFraming.Body? = nil, label: inout RequestLabel) -> Plan {
        let runtime = shared.runtime(on: loop)
        let trusted = runtime.isTrusted(peer: peerBytes)
        label = RequestLabel(id: requestID(received, trusted: trusted))
        if let tracing = shared.tracing, !Self.untraced(received.uri) {
            label.trace = tracing.startRequest(received, trusted: trusted, requestID: label.id, draw: loop.requestIDs.nextValue())
        }
        let head: HTTPRequestHead
        switch RequestTarget.normalise(received) {
        case .success(let normalised): head = normalised
        case .failure(let rejection):
            return reject(received, .badRequest, rejection.rawValue, reason: rejection.rawValue)
        }
        if head.uri.hasPrefix("/_ssogate/") {
            // The logout page reads and ends sessions in the store: answered by a task.
            if pathOnly(head.uri) == "/_ssogate/logout", head.method == .GET || head.method == .POST {
                return .collectBody(organization: "", head: head)
            }
            if Self.isForwardAuth(head.uri) { return .respond(forwardAuth(head, label: &label), head: head, close: false) }
            // Readiness asks the store: answered by a task (on the admin listener instead, when there is one).
            if pathOnly(head.uri) == "/_ssogate/ready", shared.runtime(on: loop).configuration.adminListen == nil,
               head.method == .GET || head.method == .HEAD {
                return .collectBody(organization: "", head: head)
            }
            return .respond(internalEndpoint(head), head: head, close: false)
        }
        if head.uri.hasPrefix("/organizations/"), let plan = ssoEndpoint(head, runtime: runtime, label: &label) { return plan }
        if head.uri.hasPrefix("/api/organizations/"), let organization = SettingsAPI.endpoint(pathOnly(head.uri))?.organization
            ?? Tokens.apiEndpoint(pathOnly(head.uri))?.organization {
            // Only a name some organization has: the rest is the client's text.
            if runtime.configuration.organization(named: organization) != nil { label.organization = organization }
            return .collectBody(organization: organization, head: head)
        }
        if head.method == .CONNECT {
            return reject(head, .methodNotAllowed, "CONNECT is not supported", reason: "CONNECT method")
        }
        let body: RequestFraming.Body
        if let bodyFraming {
            body = bodyFraming
        } else {
            switch RequestFraming.body(of: head) {
            case .success(let b): body = b
            case .failure(let rejection):
                return reject(head, .badRequest, "bad request framing", reason: rejection.rawValue)
            }
        }
        var expectContinue = false
        if let expect = head.headers.first(name: "expect") {
            guard expect.lowercased() == "100-continue" else {
                return reject(head, .expectationFailed, "unsupported expectation", reason: "Expect other than 100-continue")
            }
            expectContinue = head.version >= .http1_1 && body != .none
        }

        // A WebSocket is never a page: without a grant for protected content it gets the
        // 401 JSON (an API client's answer), never a banner or a redirect, never an upgrade.
        let webSocket = HeaderPolicy.isWebSocketUpgrade(head) && body == .none
        let credential = Credential(authorization: head.headers.first(name: "authorization")?[...])
        // Without routes, no Host lookup: every request goes to `upstream`.
        let route = runtime.router.isEmpty ? nil : runtime.router.route(host: head.headers.first(name: "host"), path: pathOnly(head.uri))
        let (decision, sessionCookie) = runtime.flow.decide(
            path: pathOnly(head.uri), uri: head.uri, method: head.method.rawValue,
            accept: webSocket ? "application/json" : head.headers.first(name: "accept"),
            sessionCookie: RequestFields.cookie(named: runtime.flow.cookieName, in: head.headers), cache: loop.sessions,
            credential: credential, tokenCache: loop.tokens, route: route)
        let clearing: [(String, String)] = sessionCookie.map { [("Set-Cookie", $0)] } ?? []
        var identity: [(String, String)] = []
        var bannerHTML: String?
        var grantExpires: Int64?
        var claims: UpstreamClaims?
        var grantSessions: [String] = []
        label.name(decision)
        switch decision {
        case .forward(let headers, let expires, let grantClaims, let sessions, _):
            identity = headers
            grantExpires = expires
            claims = grantClaims
            grantSessions = sessions
        case .banner(let organization, let loginURL):
            // Forwarded anonymously; an HTML answer gets the "Login with SSO" banner.
            if head.method == .GET { bannerHTML = BannerInjector.html(organization: organization, loginURL: loginURL) }
        case .redirect, .ambiguousPath, .unauthorized, .refused, .forbidden:
            let (response, close) = answer(decision, head: head, runtime: runtime, clearing: clearing, html: !webSocket, requestID: label.id)
            return .respond(response, head: head, close: close)
        }
        // The trace goes on upstream: under the exchange's span when this request is traced,
        // else as a trusted proxy sent it.
        let routed = runtime.route(route)
        var traceParent: String?, traceState: String?
        if let trace = label.trace {
            (traceParent, traceState) = trace.startUpstream(method: head.method, host: routed.endpoint.host, port: routed.endpoint.port)
        } else if trusted, let parent = head.headers.first(name: "traceparent") {
            traceParent = parent
            traceState = head.headers.first(name: "tracestate")
        }
        let upstreamHead = HeaderPolicy.upstreamRequestHead(
            from: head, peer: peerText, peerTrusted: trusted, requestID: label.id, traceParent: traceParent, traceState: traceState,
            scheme: scheme, bodyFraming: body, defaultHost: runtime.publicHost, dropCookies: runtime.reservedCookies, identity: identity,
            askIdentityEncoding: bannerHTML != nil, webSocket: webSocket, dropAuthorization: credential?.isToken == true)
        var webSocketAccept: [UInt8]?
        var tunnelEnds: NIODeadline?
        if webSocket {
            guard let accept = HeaderPolicy.webSocketAccept(forKey: head.headers[canonicalForm: "sec-websocket-key"]) else {
                return reject(head, .badRequest, "bad WebSocket handshake", reason: "WebSocket upgrade without one valid Sec-WebSocket-Key")
            }
            webSocketAccept = accept
            if let grantExpires {
                let seconds = Double(grantExpires) - shared.clock().timeIntervalSince1970
                tunnelEnds = start + .milliseconds(Int64(max(0, seconds) * 1000))
            }
        }
        let exchange = Exchange(method: head.method, uri: head.uri, clientVersion: head.version,
                                clientKeepAlive: head.isKeepAlive, upstreamHead: upstreamHead,
                                requestBody: body, start: start, route: routed, tunnelEnds: tunnelEnds)
        exchange.reservedCookies = runtime.reservedCookies
        exchange.bannerHTML = bannerHTML
        exchange.sessionCookie = sessionCookie
        exchange.hsts = runtime.hstsValue
        exchange.webSocketAccept = webSocketAccept
        // A tunnel ends with its sessions too (logout, revoke), not only at their expiry.
        if webSocket { exchange.tunnelSessions = grantSessions }
        if runtime.minter != nil { exchange.assertionClaims = claims }
        return .proxy(exchange, expectContinue: expectContinue)
    }

    /// The answer made here to a decision that does not forward (the proxy's and
    /// forward-auth's alike); `close` ends an HTTP/1 connection after it.
    /// - Parameter html: a page may answer (not a WebSocket), when the client accepts one.
    func answer(_ decision: AccessDecision, head: HTTPRequestHead, runtime: GatewayRuntime, clearing: [(String, String)],
                html: Bool, requestID: String) -> (LocalResponse, close: Bool) {
        switch decision {
        case .forward, .banner:
            preconditionFailure("a forwarding decision has no local answer")
        case .redirect(let location):
            return (LocalResponse(status: .found, headers: [("Location", location), ("Cache-Control", "no-store")] + clearing, body: []), false)
        case .ambiguousPath:
            rejected(.badRequest, reason: "path names different organizations with and without its ; parameters")
            return (.plain(.badRequest, "ambiguous path"), true)
        case .unauthorized(let organization, let json, let badToken):
            // A wrong token is a guess: counted like a login attempt from this client.
            if badToken, let refusal = shared.logins.admit(client: clientAddress(head, runtime: runtime), now: shared.clock().timeIntervalSince1970) {
                shared.metrics.loginTurnedAway(endpoint: "token", reason: refusal.code)
                return (LocalResponse(status: .tooManyRequests, headers: [("Content-Type", "application/json"), ("Retry-After", "60")],
                                      body: Array("{\"error\":\"\(refusal.code)\"}".utf8)), false)
            }
            // `git` asks for a user name and password on Basic: the token goes in the password.
            return (LocalResponse(status: .unauthorized, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                                                                   ("WWW-Authenticate", "Basic realm=\"ssogate \(organization)\"")] + clearing,
                                  body: json), false)
        case .refused(let refusal):
            shared.audit(refusal, peer: peerText, requestID: requestID)
            // A page for whatever a browser sent (a form's POST too), JSON for the rest.
            let page = html && (head.headers.first(name: "accept")?.lowercased().contains("text/html") ?? false)
            var response = runtime.flow.refusedResponse(refusal, html: page, requestID: requestID)
            response.headers += clearing
            return (response, false)
        case .forbidden(let json):
            return (LocalResponse(status: .forbidden, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body: json), false)
        }
    }

    /// `/organizations/{org}/sso`, `/saml/consume`, `/saml/metadata`; nil for any other
    /// path under `/organizations/`, which is then proxied like everything else.
    private func ssoEndpoint(_ head: HTTPRequestHead, runtime: GatewayRuntime, label: inout RequestLabel) -> Plan? {
        let parts = pathOnly(head.uri).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[1] == "organizations" else { return nil }
        let organization = String(parts[2])
        let rest = parts[3...].joined(separator: "/")
        // Only a name some organization has: the rest is the client's text.
        if runtime.configuration.organization(named: organization) != nil { label.organization = organization }
        switch (head.method, rest) {
        case (.GET, "sso"), (.HEAD, "sso"):
            if let refusal = shared.logins.admit(client: clientAddress(head, runtime: runtime), now: shared.clock().timeIntervalSince1970) {
                shared.metrics.loginTurnedAway(endpoint: "start", reason: refusal.code)
                return .respond(runtime.flow.turnedAway(refusal, organization: organization, acceptsJSON: Self.acceptsJSON(head),
                                                        requestID: label.id), head: head, close: false)
            }
            let query = RequestFields.query(head.uri)
            // The console's "Update and Test": the flow built from the draft settings.
            if query["draft"] != nil {
                guard let draftFlow = runtime.draftFlow else {
                    return .respond(.text(.conflict, "there are no saved settings to test: save them in the console first"), head: head, close: false)
                }
                return .respond(draftFlow.startLogin(organization: organization, query: query), head: head, close: false)
            }
            return .respond(runtime.flow.startLogin(organization: organization, query: query), head: head, close: false)
        case (.POST, "saml/consume"):
            return .collectBody(organization: organization, head: head)
        case (.GET, "saml/slo"), (.POST, "saml/slo"):
            return .collectBody(organization: organization, head: head)
        case (.GET, "saml/metadata"), (.HEAD, "saml/metadata"):
            return .respond(runtime.flow.spMetadata(organization: organization), head: head, close: false)
        default:
            // The console pages; other settings pages are the application's.
            if rest.hasPrefix("settings/"), Console.page(rest, method: head.method) != nil || Tokens.page(rest, method: head.method) != nil {
                return .collectBody(organization: organization, head: head)
            }
            return nil
        }
    }

    /// A request whose body was collected: the settings API, a console page, or the ACS.
    /// - Parameter trace: the request's span, for the ACS's validation and store calls.
    func answerCollected(organization: String, head: HTTPRequestHead, body: ByteBuffer, requestID: String, trace: SpanParent? = nil,
                         on loop: EventLoop) -> EventLoopFuture<LocalResponse> {
        let path = pathOnly(head.uri)
        if path == "/_ssogate/ready" {
            let shared = self.shared
            return loop.makeFutureWithTask { await AdminEndpoints.ready(shared) }
        }
        if path == "/_ssogate/logout" {
            let logout = Logout(shared: shared, peer: peerText)
            let bytes = Array(body.readableBytesView)
            return Self.answered(on: loop, trace) { await logout.answer(head, body: bytes, requestID: requestID) }
        }
        if path == "/organizations/\(organization)/saml/slo" {
            return singleLogout(organization: organization, head: head, body: body, requestID: requestID, trace: trace, on: loop)
        }
        if path.hasPrefix("/organizations/\(organization)/settings/tokens"),
           let page = Tokens.page(String(path.dropFirst("/organizations/\(organization)/".count)), method: head.method) {
            let tokens = Tokens(shared: shared, peer: peerText)
            let bytes = Array(body.readableBytesView)
            return Self.answered(on: loop, trace) { await tokens.answerPage(head, body: bytes, organization: organization, page: page, requestID: requestID) }
        }
        if head.uri.hasPrefix("/api/"), let (_, id) = Tokens.apiEndpoint(path) {
            let runtime = shared.runtime(on: self.loop)
            if let refusal = shared.logins.admit(client: clientAddress(head, runtime: runtime), now: shared.clock().timeIntervalSince1970) {
                shared.metrics.loginTurnedAway(endpoint: "api", reason: refusal.code)
                return loop.makeSucceededFuture(SettingsAPI.json(refusal == .busy ? .serviceUnavailable : .tooManyRequests, ["error": refusal.code]))
            }
            let tokens = Tokens(shared: shared, peer: peerText)
            let bytes = Array(body.readableBytesView)
            return Self.answered(on: loop, trace) { await tokens.answerAPI(head, body: bytes, organization: organization, id: id, requestID: requestID) }
        }
        let consolePrefix = "/organizations/\(organization)/settings/"
        if path.hasPrefix(consolePrefix), let page = Console.page(String(path.dropFirst("/organizations/\(organization)/".count)), method: head.method) {
            let runtime = shared.runtime(on: self.loop)
            // Forms and one-time links are what an unauthenticated client can make it do.
            if head.method == .POST || page == .linkLogin,
               let refusal = shared.logins.admit(client: clientAddress(head, runtime: runtime), now: shared.clock().timeIntervalSince1970) {
                shared.metrics.loginTurnedAway(endpoint: "console", reason: refusal.code)
                return loop.makeSucceededFuture(.text(refusal == .busy ? .serviceUnavailable : .tooManyRequests, "too many requests: try again shortly"))
            }
            let console = Console(shared: shared, peer: peerText)
            let bytes = Array(body.readableBytesView)
            return Self.answered(on: loop, trace) { await console.answer(head, body: bytes, organization: organization, page: page, requestID: requestID) }
        }
        guard head.uri.hasPrefix("/api/"), let (_, endpoint) = SettingsAPI.endpoint(path) else {
            return consume(organization: organization, head: head, body: body, requestID: requestID, trace: trace, on: loop)
        }
        let runtime = shared.runtime(on: self.loop)
        // Each API request may read the store (its token): the login rates bound what an
        // unauthenticated client can make it do.
        if let refusal = shared.logins.admit(client: clientAddress(head, runtime: runtime), now: shared.clock().timeIntervalSince1970) {
            shared.metrics.loginTurnedAway(endpoint: "api", reason: refusal.code)
            return loop.makeSucceededFuture(SettingsAPI.json(refusal == .busy ? .serviceUnavailable : .tooManyRequests, ["error": refusal.code]))
        }
        let api = SettingsAPI(shared: shared, peer: peerText)
        let bytes = Array(body.readableBytesView)
        return Self.answered(on: loop, trace) {
            await api.answer(head, body: bytes, organization: organization, endpoint: endpoint, requestID: requestID)
        }
    }

    /// The ACS once its form body is in: counted against the login rates, validated on a
    /// login worker (never on this event loop), then its IDs spent in the replay store (at
    /// once in memory, asynchronously in a shared store); logged, audited and counted. A
    /// test of draft settings is validated with them, and its result recorded.
    func consume(organization: String, head: HTTPRequestHead, body: ByteBuffer, requestID: String, trace: SpanParent? = nil,
                 on loop: EventLoop) -> EventLoopFuture<LocalResponse> {
        let acceptsJSON = Self.acceptsJSON(head)
        let runtime = shared.runtime(on: self.loop)
        let cookies = RequestFields.cookies(head.headers)
        let draft = runtime.flow.draftTested(organization: organization, cookies: cookies)
        let flow = draft.flatMap { _ in runtime.draftFlow } ?? runtime.flow
        if let refusal = shared.logins.admit(client: clientAddress(head, runtime: runtime), now: shared.clock().timeIntervalSince1970) {
            return loop.makeSucceededFuture(turnedAway(refusal, flow: flow, organization: organization, acceptsJSON: acceptsJSON, requestID: requestID))
        }
        let validated = shared.logins.run(on: loop) {
            let span = trace?.begin("saml.validate")
            defer { span?.finish() }
            let step = flow.consume(organization: organization, form: RequestFields.form(String(buffer: body)), cookies: cookies,
                                    acceptsJSON: acceptsJSON, requestID: requestID)
            if case .done(let outcome) = step { span?.set("ssogate.login.result", outcome.result) }
            return step
        }
        guard let validated else {
            return loop.makeSucceededFuture(turnedAway(.busy, flow: flow, organization: organization, acceptsJSON: acceptsJSON, requestID: requestID))
        }
        let shared = self.shared
        let answered = validated.flatMap { step -> EventLoopFuture<SSOFlow.ConsumeOutcome> in
            switch step {
            case .done(let outcome):
                return loop.makeSucceededFuture(outcome)
            case .spend(let spends, let begun, let finish):
                let now = shared.clock()
                let store = shared.store
                // The session is recorded before the IDs are spent: a store that does not take
                // the record fails the login with nothing spent; a record whose IDs turn out
                // spent (a replay) is ended at once.
                if let outcome = store.spendNow(spends, now: now) {
                    trace?.begin("store.spend").finish()
                    // Only a store without I/O answers at once (memory), and it records at once too.
                    if case .spent = outcome, let record = begun { _ = store.recordSessionNow(record) }
                    return loop.makeSucceededFuture(finish(outcome))
                }
                return Self.answered(on: loop, trace) {
                    if let record = begun {
                        do {
                            try await StoreCalls.traced("record_session", { try await store.recordSession(record) })
                        } catch {
                            shared.logger.error("state store did not record a session", metadata: ["error": "\(error)"])
                            return .unavailable
                        }
                    }
                    let outcome = await StoreCalls.traced("spend", { await store.spend(spends, now: now) })
                    if let record = begun, !(outcome == .spent) {
                        _ = try? await StoreCalls.traced("end_sessions", { try await store.endSessions(.ids([record.id]), now: record.created) })
                    }
                    return outcome
                }.map(finish)
            }
        }
        guard let draft else {
            return answered.map { self.finished($0, organization: organization, requestID: requestID) }
        }
        // The test's result is recorded (a pass makes the draft active) before the page says
        // so, and in force here at once.
        return answered.flatMap { outcome in
            Self.answered(on: loop, trace) {
                let passed = outcome.result == "test_success"
                let result = TestResult(ok: passed, at: Int64(shared.clock().timeIntervalSince1970), reason: passed ? nil : outcome.result)
                do {
                    _ = try await StoreCalls.traced("record_test", {
                        try await shared.store.recordTest(organization: organization, revision: draft, result: result) })
                    await SettingsSync.refresh(shared)
                } catch {
                    shared.logger.warning("test result not recorded", metadata: ["organization": "\(organization)", "error": "\(error)"])
                }
                return self.finished(outcome, organization: organization, requestID: requestID, test: true)
            }
        }
    }

    /// `work` in a task whose state-store calls hang under `trace` (StoreCalls).
    static func answered<T: Sendable>(on loop: EventLoop, _ trace: SpanParent?,
                                      _ work: @escaping @Sendable () async -> T) -> EventLoopFuture<T> {
        loop.makeFutureWithTask { await StoreCalls.$parent.withValue(trace) { await work() } }
    }

    private func turnedAway(_ refusal: LoginGuard.Refusal, flow: SSOFlow, organization: String, acceptsJSON: Bool,
                            requestID: String) -> LocalResponse {
        shared.metrics.loginTurnedAway(endpoint: "acs", reason: refusal.code)
        shared.logger.warning("login turned away", metadata: [
            "organization": "\(organization)", "reason": "\(refusal.code)", "request_id": "\(requestID)", "peer": "\(peerText ?? "-")",
        ])
        return flow.turnedAway(refusal, organization: organization, acceptsJSON: acceptsJSON, requestID: requestID)
    }

    static func acceptsJSON(_ head: HTTPRequestHead) -> Bool {
        let accept = head.headers.first(name: "accept")?.lowercased() ?? ""
        return accept.contains("application/json") && !accept.contains("text/html")
    }

    /// Whom a rate applies to: the peer, or, when the peer is a trusted proxy, the address
    /// that proxy appended last to `X-Forwarded-For` (the client it saw).
    func clientAddress(_ head: HTTPRequestHead, runtime: GatewayRuntime) -> [UInt8]? {
        guard runtime.isTrusted(peer: peerBytes) else { return peerBytes }
        let forwarded = head.headers["x-forwarded-for"].joined(separator: ",")
        guard let last = forwarded.split(separator: ",").last.map({ $0.trimmingCharacters(in: .whitespaces) }),
              let address = IPAddressText.parse(last) else { return peerBytes }
        return address
    }

    private func finished(_ outcome: SSOFlow.ConsumeOutcome, organization: String, requestID: String, test: Bool = false) -> LocalResponse {
        let known = shared.runtime(on: loop).configuration.organization(named: organization) != nil
        shared.metrics.loginFinished(organization: known ? organization : "unknown", result: outcome.result)
        let passed = outcome.result == "success" || outcome.result == "test_success"
        // The reason code, never the assertion (docs/CONTRACT.md: a failed login names its reason).
        // A name no organization has gets no audit event: no org admin could read it, and the
        // store would keep the client's text (the log line below says what happened).
        if known { shared.audit(AuditEvent(time: Int64(shared.clock().timeIntervalSince1970), action: test || outcome.result == "test_success" ? "sso.test" : "sso.login",
                                organization: organization, actor: outcome.subject, result: passed ? "success" : "failure",
                                reason: passed ? nil : outcome.result, subject: outcome.subject, ip: peerText, requestID: requestID)) }
        // Login lines name the subject, when the assertion got far enough to name one.
        if outcome.result == "success" || outcome.result == "test_success" {
            shared.logger.info("login", metadata: ["organization": "\(organization)", "result": "\(outcome.result)", "request_id": "\(requestID)",
                                                   "subject": "\(outcome.subject ?? "-")"])
        } else {
            shared.logger.warning("login refused", metadata: [
                "organization": "\(organization)", "reason": "\(outcome.result)", "detail": "\(outcome.detail ?? "-")",
                "request_id": "\(requestID)", "peer": "\(peerText ?? "-")", "subject": "\(outcome.subject ?? "-")",
            ])
        }
        return outcome.response
    }

    /// Health, readiness, metrics and keys: asked every few seconds, never worth a span.
    static func untraced(_ uri: String) -> Bool {
        guard uri.hasPrefix("/_ssogate/") else { return false }
        let path = pathOnly(uri)
        return path == "/_ssogate/healthz" || path == "/_ssogate/ready" || path == "/_ssogate/metrics" || path == "/_ssogate/jwks.json"
    }

    /// A trusted proxy's `X-Request-Id` when it sent a usable one, else the loop's next.
    private func requestID(_ head: HTTPRequestHead, trusted: Bool) -> String {
        if trusted, let given = head.headers.first(name: "x-request-id"), RequestIDSource.accepts(given) { return given }
        return loop.requestIDs.next()
    }

    private func internalEndpoint(_ head: HTTPRequestHead) -> LocalResponse {
        switch (head.method, pathOnly(head.uri)) {
        case (.GET, "/_ssogate/healthz"), (.HEAD, "/_ssogate/healthz"):
            return .plain(.ok, "ok")
        case (.GET, "/_ssogate/jwks.json"), (.HEAD, "/_ssogate/jwks.json"):
            guard let minter = shared.runtime(on: loop).minter else { return .plain(.notFound, "not found (upstream_assertion is off)") }
            return LocalResponse(status: .ok, headers: [("Content-Type", "application/jwk-set+json"), ("Cache-Control", "public, max-age=300")],
                                 body: minter.jwks)
        case (.GET, "/_ssogate/metrics") where shared.runtime(on: loop).configuration.adminListen == nil:
            return LocalResponse(status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Cache-Control", "no-store")],
                                 body: shared.metrics.exposition())
        default:
            return .plain(.notFound, "not found")
        }
    }

    private func reject(_ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ text: String, reason: String) -> Plan {
        rejected(status, reason: reason)
        return .respond(.plain(status, text), head: head, close: true)
    }

    /// Logs a request refused before it reached any endpoint.
    func rejected(_ status: HTTPResponseStatus, reason: String) {
        shared.logger.warning("rejected request", metadata: [
            "reason": "\(reason)", "status": "\(status.code)", "peer": "\(peerText ?? "-")",
        ])
    }
}

extension LocalResponse {
    /// A short plain-text answer that no cache keeps (errors, health).
    static func plain(_ status: HTTPResponseStatus, _ text: String) -> LocalResponse {
        LocalResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
                      body: Array((text + "\n").utf8))
    }
}
