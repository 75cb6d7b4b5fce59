@testable import Access
@testable import Gateway
@testable import HTTPWire
import NIOCore
import NIOHTTP1
import Testing

/// The pure parts of the proxy, without sockets: they must hold even if the HTTP parser
/// in front of them became more lenient.
@Suite("Request framing rules")
struct RequestFramingTests {
    private func head(_ fields: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: HTTPHeaders(fields))
    }

    @Test func noLengthAndNoTransferEncodingMeansNoBody() throws {
        #expect(try RequestFraming.body(of: head([])).get() == .none)
    }

    @Test func aSingleContentLengthIsTheBodyLength() throws {
        #expect(try RequestFraming.body(of: head([("Content-Length", "42")])).get() == .contentLength(42))
    }

    @Test func chunkedAloneIsChunked() throws {
        #expect(try RequestFraming.body(of: head([("Transfer-Encoding", "Chunked")])).get() == .chunked)
    }

    @Test func bothFramingsAreRefused() {
        #expect(throws: RequestFraming.Rejection.contentLengthAndTransferEncoding) {
            try RequestFraming.body(of: head([("Content-Length", "5"), ("Transfer-Encoding", "chunked")])).get()
        }
    }

    @Test func differingLengthsAreRefused() {
        #expect(throws: RequestFraming.Rejection.conflictingContentLength) {
            try RequestFraming.body(of: head([("Content-Length", "5"), ("Content-Length", "6")])).get()
        }
        #expect(throws: RequestFraming.Rejection.conflictingContentLength) {
            try RequestFraming.body(of: head([("Content-Length", "5, 6")])).get()
        }
    }

    @Test func identicalLengthsCollapseToOne() throws {
        #expect(try RequestFraming.body(of: head([("Content-Length", "5"), ("Content-Length", " 5 ")])).get() == .contentLength(5))
    }

    @Test(arguments: ["+5", "-1", "5a", "", "0x10", "99999999999999999999999"])
    func nonDecimalLengthsAreRefused(value: String) {
        #expect(throws: RequestFraming.Rejection.invalidContentLength) {
            try RequestFraming.body(of: head([("Content-Length", value)])).get()
        }
    }

    @Test(arguments: ["gzip", "gzip, chunked", "chunked, gzip", "xchunked", "identity"])
    func transferCodingsOtherThanAloneChunkedAreRefused(value: String) {
        #expect(throws: RequestFraming.Rejection.unsupportedTransferEncoding) {
            try RequestFraming.body(of: head([("Transfer-Encoding", value)])).get()
        }
    }
}

@Suite("Header policy")
struct HeaderPolicyTests {
    /// Every byte value at every position of `X-Forwarded-User`: the name stays an identity
    /// field exactly when the byte is that letter in either case (or `-`/`_` at a separator).
    @Test func identityClassificationUnderEveryByteSubstitution() {
        let name = Array("X-Forwarded-User".utf8)
        for position in name.indices {
            for byte in UInt8(0)...UInt8(127) {
                var bytes = name
                bytes[position] = byte
                let original = name[position]
                let isSeparator = original == UInt8(ascii: "-")
                let sameLetter = (byte | 0x20) == (original | 0x20) && (original | 0x20) >= 0x61 && (original | 0x20) <= 0x7A
                let expected = isSeparator ? (byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")) : sameLetter
                let kind = HeaderName.classify(String(decoding: bytes, as: UTF8.self)).0
                #expect((kind == .identity) == expected, "byte \(byte) at \(position)")
            }
        }
    }

    @Test func theWholeSSONamespaceIsTheGatewaysInAnySpelling() {
        for name in ["X-SSO-Role", "x_sso_anything", "X-Sso-Organization", "x-SSO-"] {
            #expect(HeaderName.classify(name).0 == .identity, "\(name)")
        }
        #expect(HeaderName.classify("X-SSOish").0 == .other)
    }

    @Test func identityFieldsAreDroppedFromTheUpstreamHead() {
        for spelling in ["X-Forwarded-User", "x_forwarded_user", "X-FORWARDED_EMAIL", "x-forwarded-groups", "X-Sso-Role"] {
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: [spelling: "evil", "Host": "h"])
            let out = HeaderPolicy.upstreamRequestHead(from: head, peer: "127.0.0.1", peerTrusted: false, scheme: "http", bodyFraming: .none)
            #expect(!out.headers.contains { HeaderName.classify($0.name).0 == .identity }, "\(spelling)")
        }
    }

    @Test func forwardingFieldsSpelledWithUnderscoreAreNotBelievedEvenFromATrustedPeer() {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders([
            ("Host", "h"), ("X_Forwarded_For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.1"),
        ]))
        let out = HeaderPolicy.upstreamRequestHead(from: head, peer: "127.0.0.1", peerTrusted: true, scheme: "http", bodyFraming: .none)
        #expect(out.headers["X-Forwarded-For"] == ["203.0.113.1, 127.0.0.1"])
        #expect(!out.headers.contains { $0.name.contains("_") })
    }

    @Test func connectionListedFieldsAreDroppedBothWays() {
        let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders([
            ("Connection", "X-Hop, keep-alive"), ("x-hop", "1"), ("X-Keep", "2"),
        ]))
        let up = HeaderPolicy.upstreamRequestHead(from: request, peer: nil, peerTrusted: false, scheme: "http", bodyFraming: .none)
        #expect(up.headers["x-hop"].isEmpty && up.headers["X-Keep"] == ["2"] && up.headers["connection"].isEmpty)
    }

    @Test func responseFieldsNamedByConnectionAreDroppedByteForByte() {
        // obs-text (0x80-0xFF) in a kept value must reach the client unchanged.
        var fields = ByteBuffer()
        fields.writeBytes(Array("X-Hop: 1\r\nX-Latin: caf".utf8) + [0xE9] + Array("\r\nx-HOP: 2\r\nX-Keep: 3\r\n".utf8))
        let out = ResponseParser.dropping(["x-hop"], from: fields)
        #expect(Array(out.readableBytesView) == Array("X-Latin: caf".utf8) + [0xE9] + Array("\r\nX-Keep: 3\r\n".utf8))
    }

    @Test func aLookalikeFieldIsForwarded() {
        // (Anything under X-Forwarded- is a forwarding claim and dropped from untrusted peers.)
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["X-ForwardedUser": "1", "X-SSOish": "2"])
        let out = HeaderPolicy.upstreamRequestHead(from: head, peer: nil, peerTrusted: false, scheme: "http", bodyFraming: .none)
        #expect(out.headers["X-ForwardedUser"] == ["1"])
        #expect(out.headers["X-SSOish"] == ["2"])
    }

    @Test(arguments: ["X-Real-IP", "True-Client-IP", "X-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP", "X-Cluster-Client-IP",
                      "X-Original-Forwarded-For", "X-Original-Host", "X-Host", "X-HTTP-Host-Override", "x_real_ip"])
    func clientAddressAndHostClaimsAreBelievedOnlyFromATrustedProxy(name: String) {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders([("Host", "h"), (name, "6.6.6.6")]))
        let untrusted = HeaderPolicy.upstreamRequestHead(from: head, peer: "127.0.0.1", peerTrusted: false, scheme: "http", bodyFraming: .none)
        #expect(untrusted.headers[name].isEmpty, "\(name) from an untrusted client reached the upstream")
        let trusted = HeaderPolicy.upstreamRequestHead(from: head, peer: "127.0.0.1", peerTrusted: true, scheme: "http", bodyFraming: .none)
        #expect(trusted.headers[name] == (name.contains("_") ? [] : ["6.6.6.6"]), "\(name) from a trusted proxy")
    }

    @Test(arguments: ["X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Forwarded-Uri", "X-Forwarded-Path", "X-Envoy-Original-Path",
                      "x_original_url"])
    func urlOverridesNeverReachTheUpstream(name: String) {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/public", headers: HTTPHeaders([("Host", "h"), (name, "/acme/secret")]))
        for trusted in [false, true] {
            let out = HeaderPolicy.upstreamRequestHead(from: head, peer: "127.0.0.1", peerTrusted: trusted, scheme: "http", bodyFraming: .none)
            #expect(out.headers[name].isEmpty, "\(name) reached the upstream (trusted: \(trusted))")
        }
    }

    @Test func anHTTP10RequestWithoutHostIsForwardedWithThePublicHost() {
        let head = HTTPRequestHead(version: .http1_0, method: .GET, uri: "/", headers: [:])
        let out = HeaderPolicy.upstreamRequestHead(from: head, peer: nil, peerTrusted: false, scheme: "http", bodyFraming: .none,
                                                   defaultHost: "hub.example.test")
        #expect(out.version == .http1_1 && out.headers["host"] == ["hub.example.test"])
    }

    @Test func contentLengthIsSentOnceAsTheValidatedValue() {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: HTTPHeaders([("Content-Length", "5"), ("Content-Length", "5")]))
        let out = HeaderPolicy.upstreamRequestHead(from: head, peer: nil, peerTrusted: false, scheme: "http", bodyFraming: .contentLength(5))
        #expect(out.headers["content-length"] == ["5"])
    }

    @Test func responseFramingFollowsMethodAndClientVersion() {
        #expect(ResponseFraming.choose(requestMethod: .HEAD, clientVersion: .http1_1, upstream: .contentLength(3)) == .none)
        #expect(ResponseFraming.choose(requestMethod: .GET, clientVersion: .http1_1, upstream: .none) == .none)
        #expect(ResponseFraming.choose(requestMethod: .GET, clientVersion: .http1_1, upstream: .contentLength(3)) == .contentLength)
        #expect(ResponseFraming.choose(requestMethod: .GET, clientVersion: .http1_1, upstream: .chunked) == .chunked)
        #expect(ResponseFraming.choose(requestMethod: .GET, clientVersion: .http1_1, upstream: .untilClose) == .chunked)
        #expect(ResponseFraming.choose(requestMethod: .GET, clientVersion: .http1_0, upstream: .chunked) == .closeDelimited)
    }
}

@Suite("Client timers state machine")
struct ClientTimersTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    func timers() -> ClientTimers {
        ClientTimers(headerTimeout: .seconds(15), idleTimeout: .seconds(75), bodyTimeout: .seconds(60), writeTimeout: .seconds(30))
    }

    @Test func aNewConnectionGetsTheHeaderTimeout() {
        var t = timers()
        t.connectionOpened(now: t0)
        t.bytesReceived(now: t0 + .seconds(10))  // trickling bytes do not extend it
        #expect(t.expired(now: t0 + .seconds(14)) == nil)
        #expect(t.expired(now: t0 + .seconds(15)) == .head)
    }

    @Test func anIdleConnectionGetsTheIdleTimeoutUntilItsFirstByte() {
        var t = timers()
        t.connectionOpened(now: t0)
        t.headReceived(now: t0)
        t.requestEnded()
        #expect(t.expired(now: t0 + .seconds(3600)) == nil, "serving: the upstream timeout governs")
        t.responseCompleted(now: t0)
        #expect(t.expired(now: t0 + .seconds(75)) == .idle)
        t.bytesReceived(now: t0 + .seconds(5))
        #expect(t.expired(now: t0 + .seconds(19)) == nil)
        #expect(t.expired(now: t0 + .seconds(20)) == .head)
    }

    @Test func aBodyThatStopsComingEndsTheRequest() {
        var t = timers()
        t.connectionOpened(now: t0)
        t.headReceived(now: t0)
        t.bytesReceived(now: t0 + .seconds(50))
        #expect(t.expired(now: t0 + .seconds(109)) == nil, "each read restarts the body clock")
        #expect(t.expired(now: t0 + .seconds(110)) == .body)
        t.requestEnded()
        #expect(t.expired(now: t0 + .seconds(500)) == nil)
    }

    @Test func theBodyClockStopsWhileTheGatewayHoldsReads() {
        var t = timers()
        t.connectionOpened(now: t0)
        t.headReceived(now: t0)
        t.readsHeld(true, now: t0 + .seconds(1))
        #expect(t.expired(now: t0 + .seconds(600)) == nil, "a slow upstream is not the client's fault")
        t.readsHeld(false, now: t0 + .seconds(600))
        #expect(t.expired(now: t0 + .seconds(660)) == .body)
    }

    @Test func aClientThatStopsReadingIsGivenTheWriteTimeout() {
        var t = timers()
        t.connectionOpened(now: t0)
        t.headReceived(now: t0)
        t.requestEnded()
        t.writabilityChanged(writable: false, now: t0)
        t.writabilityChanged(writable: false, now: t0 + .seconds(20))  // still stalled: no extension
        #expect(t.expired(now: t0 + .seconds(29)) == nil)
        #expect(t.expired(now: t0 + .seconds(30)) == .write)
        t.writabilityChanged(writable: true, now: t0 + .seconds(29))
        #expect(t.expired(now: t0 + .seconds(100)) == nil)
    }

    @Test func aTunnelHasNoHeadOrBodyDeadlineButStillTheWriteOne() {
        var t = timers()
        t.connectionOpened(now: t0)
        t.headReceived(now: t0)
        t.tunnelOpened()
        #expect(t.expired(now: t0 + .seconds(86_400)) == nil)
        t.writabilityChanged(writable: false, now: t0 + .seconds(86_400))
        #expect(t.expired(now: t0 + .seconds(86_430)) == .write)
    }
}

@Suite("Pipelined requests queue")
struct PipelineQueueTests {
    func get(_ path: String) -> HTTPServerRequestPart {
        .head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: ["Host": "h"]))
    }

    @Test func requestsQueueUpToTheBoundThenTheQueueOverflowsAndEmpties() {
        var q = PipelineQueue()
        var kept = 0
        while q.append(get("/x")), q.append(.end(nil)) { kept += 1 }
        // Each small request counts its target, its fields and framing: ~80 bytes.
        #expect(kept > 100 && kept < PipelineQueue.maxBytes / 64)
        #expect(q.isEmpty && q.bytes == 0)
    }

    @Test func aQueuedBodyCountsItsBytes() {
        var q = PipelineQueue()
        let head = q.append(get("/upload"))
        let body = q.append(.body(ByteBuffer(repeating: 0, count: PipelineQueue.maxBytes)))
        #expect(head && !body && q.isEmpty)
    }

    @Test func oneConnectionStartsSixteenRequestsPerTurn() {
        var q = PipelineQueue()
        for _ in 0..<PipelineQueue.headsPerTick {
            #expect(q.mayStartRequest)
            q.requestStarted()
        }
        #expect(!q.mayStartRequest)
        q.newTick()
        #expect(q.mayStartRequest)
    }

    @Test func takingTheLastPartResetsTheCount() {
        var q = PipelineQueue()
        _ = q.append(get("/a"))
        _ = q.append(.end(nil))
        #expect(q.bytes > 0)
        _ = q.removeFirst()
        _ = q.removeFirst()
        #expect(q.isEmpty && q.bytes == 0)
    }
}
