@testable import Gateway
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

@Suite("Head timer state machine")
struct HeadTimerTests {
    @Test func aNewConnectionGetsTheHeaderTimeout() {
        var t = HeadTimer(headerTimeout: .seconds(15), idleTimeout: .seconds(75))
        #expect(t.connectionOpened() == .arm(.seconds(15)))
        #expect(t.bytesReceived() == .none)  // trickling bytes do not extend it
        #expect(t.headReceived() == .cancel)
    }

    @Test func anIdleConnectionGetsTheIdleTimeoutUntilItsFirstByte() {
        var t = HeadTimer(headerTimeout: .seconds(15), idleTimeout: .seconds(75))
        _ = t.connectionOpened()
        _ = t.headReceived()
        #expect(t.bytesReceived() == .none)  // body bytes while serving
        #expect(t.responseCompleted() == .arm(.seconds(75)))
        #expect(t.bytesReceived() == .arm(.seconds(15)))
        #expect(t.bytesReceived() == .none)
    }
}
