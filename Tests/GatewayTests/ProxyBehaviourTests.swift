import Foundation
@testable import Gateway
@testable import HTTPWire
import Testing
import TestSupport

@Suite("Proxying: what reaches the upstream and what comes back")
struct ProxyBehaviourTests {
    @Test func forwardsARequestWithHostAndTheGatewaysOwnForwardingView() async throws {
        try await withGateway { gw, _ in
            let r = try gw.request("GET /echo?x=1 HTTP/1.1\r\nHost: hub.example.test:8443\r\n\r\n")
            #expect(r.status == 200)
            let echo = try Echo(r)
            #expect(echo.uri == "/echo?x=1")
            #expect(echo.values("host") == ["hub.example.test:8443"])
            #expect(echo.values("x-forwarded-for") == ["127.0.0.1"])
            #expect(echo.values("x-forwarded-proto") == ["http"])
            #expect(echo.values("x-forwarded-host") == ["hub.example.test:8443"])
        }
    }

    @Test func anAbsoluteFormTargetIsServedAsItsPathWithHostFromTheAuthority() async throws {
        try await withGateway { gw, _ in
            let r = try gw.request("GET http://hub.example.test:8443/echo?a=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n")
            #expect(r.status == 200)
            let echo = try Echo(r)
            #expect(echo.uri == "/echo?a=1")
            #expect(echo.values("host") == ["hub.example.test:8443"])
        }
    }

    @Test func identityHeadersSentByAClientNeverReachTheUpstreamInAnySpelling() async throws {
        try await withGateway { gw, _ in
            let spoofed = [
                "X-Forwarded-User: admin@evil", "x-forwarded_user: admin@evil", "X_FORWARDED_USER: admin@evil",
                "x-FORWARDED-email: a@evil", "X-Forwarded_Groups: hf-admins", "X-SSO-Organization: acme",
                "x_sso_role: admin", "X-Sso-Assertion: forged", "X-Forwarded-Preferred-Username: root",
            ]
            let r = try gw.request("GET /echo HTTP/1.1\r\nHost: h\r\n" + spoofed.map { $0 + "\r\n" }.joined() + "\r\n")
            #expect(r.status == 200)
            let echo = try Echo(r)
            for name in echo.names {
                let canonical = name.replacingOccurrences(of: "_", with: "-")
                #expect(!["x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username"].contains(canonical), "\(name) reached the upstream")
                #expect(!canonical.hasPrefix("x-sso-"), "\(name) reached the upstream")
            }
        }
    }

    @Test func forwardingHeadersFromAnUntrustedPeerAreReplaced() async throws {
        try await withGateway { gw, _ in
            let r = try gw.request("""
            GET /echo HTTP/1.1\r\nHost: real.host\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\
            X-Forwarded-Host: evil.host\r\nForwarded: for=6.6.6.6\r\nX_Forwarded_For: 7.7.7.7\r\n\r\n
            """)
            let echo = try Echo(r)
            #expect(echo.values("x-forwarded-for") == ["127.0.0.1"])
            #expect(echo.values("x-forwarded-proto") == ["http"])
            #expect(echo.values("x-forwarded-host") == ["real.host"])
            #expect(echo.values("forwarded").isEmpty)
            #expect(!echo.names.contains("x_forwarded_for"))
        }
    }

    @Test func everyOtherForwardingClaimFromAnUntrustedPeerIsDropped() async throws {
        try await withGateway { gw, _ in
            let r = try gw.request("GET /echo HTTP/1.1\r\nHost: h\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /evil\r\nX-Forwarded-Ssl: on\r\nx_forwarded_server: evil\r\n\r\n")
            let names = try Echo(r).names
            #expect(!names.contains { HeaderName.classify($0).0 == .forwardedOther }, "\(names)")
        }
    }

    @Test func forwardingHeadersFromATrustedProxyAreKeptAndThePeerAppended() async throws {
        try await withGateway(extra: "trusted_proxies: [\"127.0.0.0/8\"]") { gw, _ in
            let r = try gw.request("""
            GET /echo HTTP/1.1\r\nHost: inner\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n\
            X-Forwarded-Host: hub.example.test\r\n\r\n
            """)
            let echo = try Echo(r)
            #expect(echo.values("x-forwarded-for") == ["203.0.113.9, 127.0.0.1"])
            #expect(echo.values("x-forwarded-proto") == ["https"])
            #expect(echo.values("x-forwarded-host") == ["hub.example.test"])
        }
    }

    @Test func hopByHopRequestHeadersAreRemovedIncludingThoseNamedInConnection() async throws {
        try await withGateway { gw, _ in
            let r = try gw.request("""
            GET /echo HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Client-Hop\r\nX-Client-Hop: 1\r\n\
            Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nX-End: kept\r\n\r\n
            """)
            let echo = try Echo(r)
            for gone in ["x-client-hop", "keep-alive", "te", "upgrade", "proxy-connection"] {
                #expect(!echo.names.contains(gone), "\(gone) reached the upstream")
            }
            #expect(echo.values("connection").allSatisfy { !$0.lowercased().contains("x-client-hop") })
            #expect(echo.values("x-end") == ["kept"])
        }
    }

    @Test func hopByHopResponseHeadersAreRemovedIncludingThoseNamedInConnection() async throws {
        try await withGateway { gw, _ in
            let r = try gw.request("GET /hop HTTP/1.1\r\nHost: h\r\n\r\n")
            #expect(r.status == 200)
            #expect(r.header("x-up-hop") == nil)
            #expect(r.header("keep-alive") == nil)
            #expect(r.header("proxy-connection") == nil)
            #expect(r.header("x-end-to-end") == "kept")
        }
    }

    @Test func aContentLengthBodyIsForwarded() async throws {
        try await withGateway { gw, _ in
            let r = try gw.request("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world")
            let echo = try Echo(r)
            #expect(echo.body == "hello world")
            #expect(echo.values("content-length") == ["11"])
        }
    }

    @Test func aChunkedBodyIsForwardedChunked() async throws {
        try await withGateway { gw, _ in
            let r = try gw.request("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            let echo = try Echo(r)
            #expect(echo.body == "hello world")
            #expect(echo.values("transfer-encoding") == ["chunked"])
        }
    }

    @Test func chunkedAndContentLengthResponsesReachTheClientIntact() async throws {
        try await withGateway { gw, _ in
            let c = try gw.client()
            try c.send("GET /stream?bytes=300000&chunked=1 HTTP/1.1\r\nHost: h\r\n\r\n")
            let chunked = try c.readResponse()
            #expect(chunked.header("transfer-encoding") == "chunked")
            #expect(chunked.body.count == 300_000)
            try c.send("GET /stream?bytes=300000 HTTP/1.1\r\nHost: h\r\n\r\n")
            let sized = try c.readResponse()
            #expect(sized.header("content-length") == "300000")
            #expect(sized.body.count == 300_000)
        }
    }

    @Test func headKeepsTheLengthAndSendsNoBodySoTheConnectionStaysUsable() async throws {
        try await withGateway { gw, _ in
            let c = try gw.client()
            try c.send("HEAD /stream?bytes=1000 HTTP/1.1\r\nHost: h\r\n\r\n")
            let head = try c.readResponse(forHead: true)
            #expect(head.status == 200)
            #expect(head.header("content-length") == "1000")
            try c.send("GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
            let next = try c.readResponse()
            #expect(next.status == 200)
            #expect(try Echo(next).method == "GET")
        }
    }

    @Test func expectContinueIsAnsweredByTheGatewayBeforeTheBodyIsSent() async throws {
        try await withGateway { gw, _ in
            let c = try gw.client(timeout: 5)
            try c.send("PUT /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            // The interim response arrives although no body byte has been sent yet.
            #expect(try c.readRawLine().hasPrefix("HTTP/1.1 100"))
            #expect(try c.readRawLine() == "")
            try c.send("data")
            let echo = try Echo(c.readResponse())
            #expect(echo.body == "data")
            #expect(echo.values("expect").isEmpty)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withGateway { gw, _ in
            let c = try gw.client()
            try c.send("GET /slow?ms=150 HTTP/1.1\r\nHost: h\r\n\r\nGET /echo?n=2 HTTP/1.1\r\nHost: h\r\n\r\nGET /echo?n=3 HTTP/1.1\r\nHost: h\r\n\r\n")
            let first = try c.readResponse()
            let second = try c.readResponse()
            let third = try c.readResponse()
            #expect(first.text == "slow")
            #expect(try Echo(second).uri == "/echo?n=2")
            #expect(try Echo(third).uri == "/echo?n=3")
        }
    }

    @Test func pipelinedRequestsWithBodiesAndLocalAnswersStayInOrder() async throws {
        try await withGateway { gw, _ in
            let c = try gw.client()
            try c.send("POST /echo?n=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                + "GET /_ssogate/healthz HTTP/1.1\r\nHost: h\r\n\r\n"
                + "POST /echo?n=3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
                + "GET /nope-local/../_ssogate/x HTTP/1.1\r\nHost: h\r\n\r\n")
            let first = try Echo(c.readResponse())
            #expect(first.uri == "/echo?n=1" && first.body == "abc")
            #expect(try c.readResponse().text == "ok\n")
            let third = try Echo(c.readResponse())
            #expect(third.uri == "/echo?n=3" && third.body == "de")
            // Dot segments are resolved before routing: this is the gateway's own namespace.
            #expect(try c.readResponse().status == 404)
        }
    }

    @Test func aMalformedRequestPipelinedBehindAGoodOneIsAnsweredAfterIt() async throws {
        try await withGateway { gw, upstream in
            let c = try gw.client()
            try c.send("GET /slow?ms=100 HTTP/1.1\r\nHost: h\r\n\r\nGARBAGE\r\n\r\n")
            let first = try c.readResponse()
            #expect(first.text == "slow")
            let second = try c.readResponse()
            #expect(second.status == 400)
            #expect(c.waitForClose(within: 5))
            #expect(upstream.requests.count == 1)
        }
    }

    @Test func keepAliveReusesOneUpstreamConnection() async throws {
        try await withGateway { gw, upstream in
            let c = try gw.client()
            for i in 0..<5 {
                try c.send("GET /echo?i=\(i) HTTP/1.1\r\nHost: h\r\n\r\n")
                #expect(try c.readResponse().status == 200)
            }
            #expect(upstream.connectionCount == 1)
        }
    }

    @Test func anHTTP10ClientGetsAChunkedUpstreamBodyDelimitedByClose() async throws {
        try await withGateway { gw, _ in
            let c = try gw.client()
            try c.send("GET /stream?bytes=5000&chunked=1 HTTP/1.0\r\nHost: h\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.version == "HTTP/1.0")
            #expect(r.header("transfer-encoding") == nil)
            #expect(r.body.count == 5000)
        }
    }

    @Test func anUpstreamThatAnswersBeforeTheBodyEndsIsRelayedAndTheConnectionCloses() async throws {
        try await withGateway { gw, _ in
            let c = try gw.client()
            try c.send("POST /early HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\npartial")
            let r = try c.readResponse()
            #expect(r.status == 413)
            #expect(c.waitForClose(within: 5))
        }
    }
}
