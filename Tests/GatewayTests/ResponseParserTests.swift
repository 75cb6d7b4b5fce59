@testable import Gateway
@testable import HTTPWire
import NIOCore
import Testing

/// The upstream response parser, without sockets. Every accepted shape is also fed one
/// byte at a time: an incremental parser must not care where reads split the stream.
@Suite("Upstream response parser")
struct ResponseParserTests {
    struct Parsed {
        var heads: [UpstreamResponseHead] = []
        var body: [UInt8] = []
        var ends = 0
        var fields: String { heads.last.map { String(buffer: $0.fields) } ?? "" }
    }

    private func parse(_ text: String, head: Bool = false, byteByByte: Bool = false, close: Bool = false) throws -> Parsed {
        var parser = ResponseParser()
        parser.expectResponse(toHead: head)
        var out = Parsed()
        let bytes = Array(text.utf8)
        let pieces = byteByByte ? bytes.map { [$0] } : [bytes]
        func take(_ event: ResponseParser.Event) {
            switch event {
            case .head(let h): out.heads.append(h)
            case .body(let b): out.body += Array(b.readableBytesView)
            case .end: out.ends += 1
            }
        }
        for piece in pieces {
            parser.receive(ByteBuffer(bytes: piece))
            while let event = try parser.next() { take(event) }
        }
        if close, let event = try parser.closed() { take(event) }
        return out
    }

    private func bothWays(_ text: String, head: Bool = false, close: Bool = false) throws -> Parsed {
        let whole = try parse(text, head: head, close: close)
        let split = try parse(text, head: head, byteByByte: true, close: close)
        #expect(whole.body == split.body && whole.ends == split.ends && whole.fields == split.fields)
        return whole
    }

    private func refused(_ text: String, head: Bool = false, close: Bool = false) {
        #expect(throws: ResponseParser.Failure.self, "\(text.debugDescription)") { try parse(text, head: head, close: close) }
    }

    @Test func aContentLengthResponseIsRelayedWithItsFieldsAsBytes() throws {
        let p = try bothWays("HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 5\r\nX-A: b c \r\n\r\nhello")
        #expect(p.heads.count == 1 && p.ends == 1)
        #expect(String(buffer: p.heads[0].statusText) == "200 OK")
        #expect(p.fields == "Server: up\r\nX-A: b c \r\n")  // framing fields are the gateway's to write
        #expect(p.heads[0].contentLength == 5 && p.heads[0].keepAlive)
        #expect(p.body == Array("hello".utf8))
    }

    @Test func aChunkedBodyIsDecodedWithExtensionsAndTrailersDropped() throws {
        let p = try bothWays("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n 0123456\r\n\r\n0\r\nX-Trailer: t\r\n\r\n")
        #expect(p.heads[0].body == .chunked)
        // 5 bytes, then 0xA = 10 bytes that happen to include CR LF as data.
        #expect(p.body == Array("hello 0123456\r\n".utf8))
        #expect(p.ends == 1)
        #expect(!p.fields.lowercased().contains("transfer-encoding"))
    }

    @Test func bareLineFeedsAreAcceptedAsLineEnds() throws {
        let p = try bothWays("HTTP/1.1 200 OK\nContent-Length: 2\n\nok")
        #expect(p.body == Array("ok".utf8) && p.ends == 1)
    }

    @Test func transferEncodingWinsOverContentLengthWhichIsNotRelayed() throws {
        let p = try bothWays("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        #expect(p.heads[0].body == .chunked && p.body == Array("ok".utf8))
        #expect(!p.fields.lowercased().contains("content-length"))
    }

    @Test func aTransferCodingOtherThanFinalChunkedRunsToTheClose() throws {
        let p = try bothWays("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc", close: true)
        #expect(p.heads[0].body == .untilClose && !p.heads[0].keepAlive)
        #expect(p.body == Array("abc".utf8) && p.ends == 1)
    }

    @Test func noLengthMeansUntilCloseAndNoReuse() throws {
        let p = try bothWays("HTTP/1.0 200 OK\r\n\r\nabc", close: true)
        #expect(p.heads[0].body == .untilClose && !p.heads[0].keepAlive && p.ends == 1)
    }

    @Test func headAnd304And204HaveNoBodyButKeepTheLength() throws {
        let head = try bothWays("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", head: true)
        #expect(head.heads[0].body == .none && head.heads[0].contentLength == 1000 && head.ends == 1)
        let notModified = try bothWays("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n")
        #expect(notModified.heads[0].body == .none && notModified.ends == 1)
        let noContent = try bothWays("HTTP/1.1 204 No Content\r\n\r\n")
        #expect(noContent.heads[0].body == .none && noContent.ends == 1)
    }

    @Test func interimResponsesAreSkipped() throws {
        let p = try bothWays("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        #expect(p.heads.count == 1 && p.heads[0].status == 201 && p.ends == 1)
    }

    @Test func hopByHopAndConnectionListedFieldsAreNotRelayed() throws {
        let p = try bothWays("HTTP/1.1 200 OK\r\nConnection: close, X-Up\r\nX-Up: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nUpgrade: h2\r\nTE: x\r\nTrailer: x\r\nX-Kept: 2\r\nContent-Length: 0\r\n\r\n")
        #expect(p.fields == "X-Kept: 2\r\n")
        #expect(!p.heads[0].keepAlive)
    }

    @Test func http10KeepsAliveOnlyWhenItSaysSo() throws {
        #expect(try parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").heads[0].keepAlive == false)
        #expect(try parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").heads[0].keepAlive)
    }

    @Test func equalRepeatedLengthsAreOneLength() throws {
        #expect(try parse("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok").body == Array("ok".utf8))
    }

    // Each refusal below is a way one response could be read as two, or a head as a body.
    @Test func differingLengthsAreRefused() { refused("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok") }
    @Test func aSignedLengthIsRefused() { refused("HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok") }
    @Test func obsoleteLineFoldingIsRefused() { refused("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n") }
    @Test func aBareCarriageReturnIsRefused() { refused("HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: x=1\r\nContent-Length: 0\r\n\r\n") }
    @Test func whitespaceBeforeTheColonIsRefused() { refused("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n") }
    @Test func aMalformedStatusLineIsRefused() {
        refused("HTTP/2.0 200 OK\r\n\r\n")
        refused("HTTP/1.1 20 OK\r\n\r\n")
        refused("HTTP/1.1 2000 OK\r\n\r\n")
        refused("ICY 200 OK\r\n\r\n")
        refused("http/1.1 200 OK\r\n\r\n")
    }
    @Test func aSwitchingProtocolsAnswerIsRefused() { refused("HTTP/1.1 101 Switching Protocols\r\n\r\n") }
    @Test func aBadChunkSizeIsRefused() { refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") }
    @Test func anOversizedChunkSizeIsRefused() { refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n") }
    @Test func chunkDataLongerThanItsSizeIsRefused() { refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n") }
    @Test func bytesAfterACompleteResponseAreRefused() { refused("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n") }
    @Test func aCutOffBodyIsAnError() { refused("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", close: true) }

    @Test func aHeadOver64KiBIsRefused() {
        refused("HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "a", count: 65 * 1024) + "\r\n\r\n")
    }
}
