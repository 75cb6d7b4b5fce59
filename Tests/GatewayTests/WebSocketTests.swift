import Foundation
@testable import Gateway
import NIOConcurrencyHelpers
import Testing
import TestSupport

/// WebSocket passthrough over real sockets: the upgrade is relayed only when the SSO rules
/// allow the request, bytes then pass unchanged both ways, and the socket is closed when
/// the grant that authorized it expires. The upstream answers `101` and echoes (a real
/// WebSocket library is driven through the gateway in Tests/HTTP2/check_http2.py).
@Suite("WebSocket passthrough")
struct WebSocketTests {
    static let switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"

    static func upgrade(_ path: String, cookie: String? = nil, accept: String = "text/html") -> String {
        "GET \(path) HTTP/1.1\r\nHost: hub.example.test\r\nAccept: \(accept)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + (cookie.map { "Cookie: \($0)\r\n" } ?? "") + "\r\n"
    }

    @Test func anUpgradeToPublicContentIsRelayedAndBytesPassBothWays() async throws {
        let upstream = try await ScriptedUpstream.start(answer: Self.switching, thenClose: false, echoAfterAnswer: true)
        let g = try await SSOFlowTests.start(upstreamPort: upstream.port)
        let c = try g.harness.client()
        try c.send(Self.upgrade("/public/ws"))
        let r = try c.readResponse(forHead: true)
        #expect(r.status == 101)
        #expect(r.header("upgrade")?.lowercased() == "websocket")
        #expect(r.header("connection")?.lowercased() == "upgrade")
        #expect(r.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        // Not HTTP any more: arbitrary bytes, including what would look like a request.
        let frames: [UInt8] = [0x81, 0x85, 1, 2, 3, 4] + Array("GET / HTTP/1.1\r\n\r\n".utf8) + (0...255).map(UInt8.init)
        try c.send(frames)
        #expect(try c.readBytes(count: frames.count) == frames)
        await upstream.stop()
        await SSOFlowTests().stop(g)
    }

    @Test func withoutAGrantProtectedContentGets401JSONAndNoUpgradeEvenForABrowser() async throws {
        let upstream = try await ScriptedUpstream.start(answer: Self.switching, thenClose: false, echoAfterAnswer: true)
        let g = try await SSOFlowTests.start(upstreamPort: upstream.port)
        for accept in ["text/html", "*/*"] {
            let r = try g.harness.request(Self.upgrade("/acme/ws", accept: accept))
            #expect(r.status == 401)
            #expect(r.header("content-type") == "application/json")
            #expect(r.text.contains("\"error\":\"sso_required\""))
        }
        #expect(upstream.requestCount == 0)
        await upstream.stop()
        await SSOFlowTests().stop(g)
    }

    @Test func withAGrantTheSocketOpensAndClosesWhenTheGrantExpires() async throws {
        let upstream = try await ScriptedUpstream.start(answer: Self.switching, thenClose: false, echoAfterAnswer: true)
        let clock = NIOLockedValueBox(SSOFlowTests.now)
        let g = try await SSOFlowTests.start(upstreamPort: upstream.port, clock: { clock.withLockedValue { $0 } })
        let (_, session) = try SSOFlowTests.logIn(g)
        #expect(!session.isEmpty)
        // Eight hours later (the default session.ttl), less a moment: the grant still holds.
        // The moment leaves the echo below room on a loaded machine (1.5 s did not, once).
        clock.withLockedValue { $0 = SSOFlowTests.now.addingTimeInterval(8 * 3600 - 3) }
        nonisolated(unsafe) let c = try g.harness.client()
        try c.send(Self.upgrade("/acme/ws", cookie: session))
        #expect(try c.readResponse(forHead: true).status == 101)
        try c.send([0x81, 0x80, 9, 9, 9, 9])
        #expect(try c.readBytes(count: 6) == [0x81, 0x80, 9, 9, 9, 9])
        // Generous: the grant ends 3 s from here; a full run on two cores once took longer
        // than 5 s to get there. The point is that the tunnel closes at all. Waited for on
        // a thread of its own: blocking a cooperative thread for seconds starves other
        // suites' gateways, whose store calls then time out.
        let closed = try await offThePool { c.waitForClose(within: 15) }
        #expect(closed, "the tunnel outlived its grant")
        #expect(g.harness.logs.all.contains { $0.contains("closed WebSocket") && $0.contains("reason=session grant expired") })
        await upstream.stop()
        await SSOFlowTests().stop(g)
    }

    @Test func aLogoutClosesTheSocketsOfItsSession() async throws {
        let upstream = try await ScriptedUpstream.start(answer: Self.switching, thenClose: false, echoAfterAnswer: true)
        let g = try await SSOFlowTests.start(upstreamPort: upstream.port)
        let (_, session) = try SSOFlowTests.logIn(g)
        nonisolated(unsafe) let c = try g.harness.client()
        try c.send(Self.upgrade("/acme/ws", cookie: session))
        #expect(try c.readResponse(forHead: true).status == 101)
        try c.send([0x81, 0x80, 9, 9, 9, 9])
        #expect(try c.readBytes(count: 6) == [0x81, 0x80, 9, 9, 9, 9])
        let out = try await SessionEndTests.logout(g, session, headers: "Sec-Fetch-Site: same-origin\r\n")
        #expect(out.status == 303)
        // The loop's sweep (each second) sees the ending; generous for a loaded machine.
        let closed = try await offThePool { c.waitForClose(within: 10) }
        #expect(closed, "the tunnel outlived its session")
        await upstream.stop()
        await SSOFlowTests().stop(g)
    }

    @Test func anotherUpgradeIsAnsweredAsAPlainRequestAndEndsTheConnection() async throws {
        let g = try await SSOFlowTests.start()
        let c = try g.harness.client()
        try c.send("GET /echo HTTP/1.1\r\nHost: hub.example.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.header("connection") == "close")
        let echo = try JSONDecoder().decode(Echo.self, from: Data(r.text.utf8))
        #expect(!echo.headers.contains { ["upgrade", "http2-settings"].contains($0[0].lowercased()) })
        #expect(c.waitForClose(within: 2))
        await SSOFlowTests().stop(g)
    }

    @Test func anUpstreamThatRefusesTheUpgradeAnswersNormallyAndTheConnectionEnds() async throws {
        let upstream = try await ScriptedUpstream.start(answer: "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", thenClose: false)
        let g = try await SSOFlowTests.start(upstreamPort: upstream.port)
        let c = try g.harness.client()
        try c.send(Self.upgrade("/public/ws"))
        let r = try c.readResponse()
        #expect(r.status == 403 && r.text == "no")
        #expect(c.waitForClose(within: 2))
        await upstream.stop()
        await SSOFlowTests().stop(g)
    }
}
