import Foundation
@testable import Gateway
@testable import HTTPWire
import NIOCore
import NIOHTTP1
import Testing
import TestSupport

/// The pieces of the HTTP/2 listener that are plain logic, and the protocol choice on a
/// plain listener over a socket. Whole exchanges (TLS, h2c, login, floods, WebSockets
/// with real clients) run in Tests/HTTP2/check_http2.py.
@Suite("HTTP/2 listener")
struct HTTP2Tests {
    // MARK: - Frame budget

    /// How many frames of one kind the budget takes at `now` before refusing (at most `limit`).
    static func allowed(_ budget: inout FrameBudget, _ type: FrameBudget.FrameType, length: Int = 0, flags: UInt8 = 0,
                        now: NIODeadline, limit: Int = 10_000) -> Int {
        var count = 0
        while count < limit, budget.allows(type: type.rawValue, length: length, flags: flags, now: now) { count += 1 }
        return count
    }

    @Test func cheapFramesAreAllowedUpToTheBurstThenRefused() {
        var budget = FrameBudget()
        #expect(Self.allowed(&budget, .ping, length: 8, now: .now()) == Int(FrameBudget.burst))
    }

    @Test func theBudgetRefillsWithTime() {
        var budget = FrameBudget()
        let start = NIODeadline.now()
        #expect(Self.allowed(&budget, .settings, now: start) == Int(FrameBudget.burst))
        // One second later `perSecond` more are allowed, and not many more.
        let refilled = Self.allowed(&budget, .settings, now: start + .seconds(1))
        #expect(abs(refilled - Int(FrameBudget.perSecond)) <= 3)
    }

    @Test func framesThatCarryRequestsOrDataCostNothing() {
        var budget = FrameBudget()
        let now = NIODeadline.now()
        let limit = 3 * Int(FrameBudget.burst)
        #expect(Self.allowed(&budget, .headers, length: 20, now: now, limit: limit) == limit)
        #expect(Self.allowed(&budget, .data, length: 1, now: now, limit: limit) == limit)
        #expect(Self.allowed(&budget, .data, flags: FrameBudget.endStream, now: now, limit: limit) == limit)
        #expect(Self.allowed(&budget, .ping, length: 8, now: now) == Int(FrameBudget.burst), "the free frames spent nothing")
    }

    @Test func windowUpdatesAreFreeOnlyForTheDataSent() {
        var budget = FrameBudget()
        let now = NIODeadline.now()
        for _ in 0..<100 { budget.sent(type: FrameBudget.FrameType.data.rawValue) }
        // 2 to start with, 2 per DATA frame sent; beyond those, each spends a token.
        #expect(Self.allowed(&budget, .windowUpdate, length: 4, now: now, limit: 10_000) == 202 + Int(FrameBudget.burst))
    }

    @Test func streamsAbandonedBeforeTheirAnswerSpendTenEach() {
        var budget = FrameBudget()
        let now = NIODeadline.now()
        var allowed = 0
        while budget.streamAbandoned(now: now) { allowed += 1 }
        #expect(allowed == Int(FrameBudget.burst / FrameBudget.abandonedStreamCost))
        var invalid = FrameBudget()
        allowed = 0
        while invalid.invalidFrame(now: now), allowed < 10_000 { allowed += 1 }
        #expect(allowed == Int(FrameBudget.burst))
    }

    @Test func emptyDataFramesAndResetsSpendTheBudget() {
        for type in [FrameBudget.FrameType.data, .rstStream, .priority] {
            var budget = FrameBudget()
            #expect(Self.allowed(&budget, type, now: .now()) == Int(FrameBudget.burst), "\(type)")
        }
    }

    // MARK: - Response fields

    @Test func upstreamFieldsBecomeLowercaseHTTP2FieldsWithTheirBytes() {
        var fields = ByteBuffer()
        fields.writeString("Content-Type: text/html\r\nX-Custom:  spaced value \t\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n")
        fields.writeBytes([UInt8]("X-Bytes: ".utf8) + [0xE9, 0x80] + [13, 10])
        let out = HTTP2Stream.lowercasedFields(fields)
        #expect(out.map { String(decoding: $0.name, as: UTF8.self) } == ["content-type", "x-custom", "set-cookie", "set-cookie", "x-bytes"])
        #expect(String(decoding: out[1].value, as: UTF8.self) == "spaced value")
        #expect(out[4].value == [0xE9, 0x80])
    }

    // MARK: - Protocol choice on a plain listener

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// An empty SETTINGS frame.
    static let settings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]

    /// The first frame the server sends after a preface: its SETTINGS (type 4).
    static func firstFrameType(_ c: RawHTTPClient) throws -> UInt8 {
        let header = try c.readBytes(count: 9)
        return header[3]
    }

    @Test func thePrefaceChoosesHTTP2EvenWhenItArrivesByteByByte() async throws {
        let upstream = try await TestUpstream.start()
        let h = try await Harness.start(upstreamPort: upstream.port)
        let whole = try h.client()
        try whole.send(Self.preface + Self.settings)
        #expect(try Self.firstFrameType(whole) == FrameBudget.FrameType.settings.rawValue)

        let split = try h.client()
        for byte in Self.preface {
            try split.send([byte])
            usleep(2000)
        }
        try split.send(Self.settings)
        #expect(try Self.firstFrameType(split) == FrameBudget.FrameType.settings.rawValue)
        await h.stop()
        await upstream.stop()
    }

    @Test func http1StillWorksBesideItAndABrokenPrefaceEndsWithGoaway() async throws {
        let upstream = try await TestUpstream.start()
        let h = try await Harness.start(upstreamPort: upstream.port)
        #expect(try h.request("GET /echo HTTP/1.1\r\nHost: h\r\n\r\n").status == 200)

        // The preface, then garbage instead of SETTINGS: GOAWAY (type 7), then the close.
        let c = try h.client()
        try c.send(Self.preface + Array("garbage that is not a frame".utf8))
        var types: [UInt8] = []
        while let header = try? c.readBytes(count: 9) {
            let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
            types.append(header[3])
            _ = try c.readBytes(count: length)
            if header[3] == FrameBudget.FrameType.goaway.rawValue { break }
        }
        #expect(types.contains(FrameBudget.FrameType.goaway.rawValue), "frames: \(types)")
        #expect(c.waitForClose(within: 3))
        await h.stop()
        await upstream.stop()
    }

    @Test func withHTTP2OffThePrefaceIsJustABadHTTP1Request() async throws {
        let upstream = try await TestUpstream.start()
        let h = try await Harness.start(upstreamPort: upstream.port, extra: "http2: {enabled: false}")
        let c = try h.client()
        try c.send(Self.preface)
        #expect(try c.readResponse().status == 400)
        await h.stop()
        await upstream.stop()
    }

    // MARK: - WebSocket upgrade detection

    @Test func onlyAWebSocketUpgradeOfABodilessHTTP11GetIsRelayed() {
        func head(_ fields: [(String, String)], _ method: HTTPMethod = .GET, _ version: HTTPVersion = .http1_1) -> HTTPRequestHead {
            HTTPRequestHead(version: version, method: method, uri: "/ws", headers: HTTPHeaders(fields))
        }
        let ws = [("Connection", "keep-alive, Upgrade"), ("Upgrade", "WebSocket")]
        #expect(HeaderPolicy.isWebSocketUpgrade(head(ws)))
        #expect(!HeaderPolicy.isWebSocketUpgrade(head(ws, .POST)))
        #expect(!HeaderPolicy.isWebSocketUpgrade(head(ws, .GET, .http1_0)))
        #expect(!HeaderPolicy.isWebSocketUpgrade(head([("Upgrade", "websocket")])))
        #expect(!HeaderPolicy.isWebSocketUpgrade(head([("Connection", "Upgrade"), ("Upgrade", "h2c")])))
        #expect(HeaderPolicy.asksUpgrade(head([("Connection", "Upgrade"), ("Upgrade", "h2c")])))

        let upstream = HeaderPolicy.upstreamRequestHead(from: head(ws + [("Host", "h")]), peer: nil, peerTrusted: false, scheme: "http",
                                                        bodyFraming: .none, webSocket: true)
        #expect(upstream.headers["connection"] == ["Upgrade"])
        #expect(upstream.headers["upgrade"] == ["websocket"])
        let plain = HeaderPolicy.upstreamRequestHead(from: head(ws + [("Host", "h")]), peer: nil, peerTrusted: false, scheme: "http",
                                                     bodyFraming: .none)
        #expect(plain.headers["connection"].isEmpty && plain.headers["upgrade"].isEmpty)
    }

    @Test func aSwitchingResponseToAnUpgradeBecomesATunnelOfBytes() throws {
        var parser = ResponseParser()
        // RFC 6455 §1.3's own example key and answer.
        let accept = try #require(HeaderPolicy.webSocketAccept(forKey: ["dGhlIHNhbXBsZSBub25jZQ=="]))
        #expect(String(decoding: accept, as: UTF8.self) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        parser.expectResponse(toHead: false, webSocketAccept: accept)
        parser.receive(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\u{81}\u{01}x"))
        guard case .head(let head)? = try parser.next() else { Issue.record("no head"); return }
        #expect(head.status == 101)
        guard case .body(let bytes)? = try parser.next() else { Issue.record("no tunnel bytes"); return }
        #expect(Array(bytes.readableBytesView) == [0xC2, 0x81, 0x01, 0x78])
        parser.receive(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n"))
        guard case .body(let more)? = try parser.next() else { Issue.record("no more tunnel bytes"); return }
        #expect(String(buffer: more) == "HTTP/1.1 200 OK\r\n\r\n")
        #expect(try parser.closed() == nil)
        #expect(!parser.isIdle, "a tunnel's connection is never reused")

        var unasked = ResponseParser()
        unasked.expectResponse(toHead: false)
        unasked.receive(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"))
        #expect(throws: ResponseParser.Failure.self) { try unasked.next() }
    }

    @Test(arguments: [
        "Upgrade: websocket\r\n",                                                    // no Sec-WebSocket-Accept
        "Upgrade: websocket\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n", // the wrong one
        "Upgrade: h2c\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",      // another protocol
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",                     // no Upgrade
        "Upgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
    ])
    func aSwitchingResponseThatIsNotTheHandshakesAnswerOpensNoTunnel(fields: String) throws {
        var parser = ResponseParser()
        parser.expectResponse(toHead: false, webSocketAccept: HeaderPolicy.webSocketAccept(forKey: ["dGhlIHNhbXBsZSBub25jZQ=="]))
        parser.receive(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\n" + fields + "\r\nGET /x HTTP/1.1\r\n"))
        #expect(throws: ResponseParser.Failure.self) { try parser.next() }
    }

    @Test(arguments: [["dGhlIHNhbXBsZSBub25jZQ=="], [], ["short"], ["dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=="], ["!!!!!!!!!!!!!!!!!!!!!!=="]])
    func onlyOneKeyOfSixteenBytesMakesAHandshake(keys: [Substring]) {
        #expect((HeaderPolicy.webSocketAccept(forKey: keys) != nil) == (keys == ["dGhlIHNhbXBsZSBub25jZQ=="]))
    }
}
