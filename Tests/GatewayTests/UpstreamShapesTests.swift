import Foundation
import Testing
import TestSupport

/// Upstream responses that a well-behaved HTTP library would not produce, relayed or
/// refused as the parser's rules say, over real sockets.
@Suite("Odd upstream responses")
struct UpstreamShapesTests {
    private func through(_ answer: String, thenClose: Bool, request: String = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n",
                         _ check: (Harness, RawHTTPClient, ScriptedUpstream) throws -> Void) async throws {
        let upstream = try await ScriptedUpstream.start(answer: answer, thenClose: thenClose)
        let gw = try await Harness.start(upstreamPort: upstream.port)
        let c = try gw.client(timeout: 5)
        try c.send(request)
        do {
            try check(gw, c, upstream)
        } catch {
            await gw.stop(); await upstream.stop()
            throw error
        }
        await gw.stop()
        await upstream.stop()
    }

    @Test func aBodyWithoutLengthIsRelayedChunkedAndItsConnectionNotReused() async throws {
        try await through("HTTP/1.0 200 OK\r\nX-Kept: 1\r\n\r\nno length here", thenClose: true) { _, c, upstream in
            let r = try c.readResponse()
            #expect(r.status == 200 && r.text == "no length here")
            #expect(r.header("transfer-encoding") == "chunked")
            #expect(r.header("x-kept") == "1")
            try c.send("GET /y HTTP/1.1\r\nHost: h\r\n\r\n")
            #expect(try c.readResponse().text == "no length here")
            #expect(upstream.requestCount == 2)
        }
    }

    @Test func interimResponsesFromTheUpstreamAreNotRelayed() async throws {
        try await through("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", thenClose: false) { _, c, _ in
            let r = try c.readRawLine()
            #expect(r == "HTTP/1.1 200 OK")
        }
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: injected=1\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
        "SPDY/3 200 OK\r\n\r\n",
    ])
    func aMalformedUpstreamResponseGives502AndNothingOfIt(answer: String) async throws {
        try await through(answer, thenClose: false) { gw, c, _ in
            let r = try c.readResponse()
            #expect(r.status == 502)
            #expect(r.text == "upstream sent a malformed response\n")
            #expect(r.header("set-cookie") == nil)
            #expect(gw.logs.contains("reason=malformed upstream response"))
        }
    }

    @Test func aBodyCutShortAbortsTheClientConnection() async throws {
        try await through("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", thenClose: true) { _, c, _ in
            #expect(throws: RawHTTPClient.Failure.self) { try c.readResponse() }
        }
    }
}
