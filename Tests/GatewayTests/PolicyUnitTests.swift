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
    @Test func canonicalNamesFoldCaseAndUnderscore() {
        #expect(HeaderPolicy.canonical("X_Forwarded_USER") == "x-forwarded-user")
    }

    /// Every byte value in a header name position: only names that canonicalise to a
    /// gateway-owned field are dropped, everything else is forwarded untouched.
    @Test func identityFieldsAreDroppedUnderEveryCaseAndSeparatorSpelling() {
        let base = Array("x-forwarded-user".utf8)
        var spellings: [String] = []
        for mask in 0..<(1 << 5) {
            var bytes = base
            for (bit, index) in [0, 2, 10, 11, 12].enumerated() where mask & (1 << bit) != 0 {
                bytes[index] = bytes[index] >= 0x61 ? bytes[index] - 32 : bytes[index]
            }
            spellings.append(String(decoding: bytes, as: UTF8.self))
            spellings.append(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "-", with: "_"))
        }
        for spelling in spellings {
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: [spelling: "evil", "Host": "h"])
            let out = HeaderPolicy.upstreamRequestHead(from: head, peer: "127.0.0.1", peerTrusted: false, scheme: "http", bodyFraming: .none)
            #expect(!out.headers.contains { HeaderPolicy.canonical($0.name) == "x-forwarded-user" }, "\(spelling)")
        }
    }

    @Test func aLookalikeFieldIsForwarded() {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["X-Forwarded-Userx": "1", "X-SSOish": "2"])
        let out = HeaderPolicy.upstreamRequestHead(from: head, peer: nil, peerTrusted: false, scheme: "http", bodyFraming: .none)
        #expect(out.headers["X-Forwarded-Userx"] == ["1"])
        #expect(out.headers["X-SSOish"] == ["2"])
    }

    @Test func contentLengthIsSentOnceAsTheValidatedValue() {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: HTTPHeaders([("Content-Length", "5"), ("Content-Length", "5")]))
        let out = HeaderPolicy.upstreamRequestHead(from: head, peer: nil, peerTrusted: false, scheme: "http", bodyFraming: .contentLength(5))
        #expect(out.headers["content-length"] == ["5"])
    }

    @Test func responseFramingFollowsMethodStatusAndVersion() {
        let sized = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "3"])
        let unsized = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Transfer-Encoding": "chunked"])
        #expect(ResponseFraming.choose(requestMethod: .HEAD, clientVersion: .http1_1, upstream: sized) == .none)
        #expect(ResponseFraming.choose(requestMethod: .GET, clientVersion: .http1_1, upstream: HTTPResponseHead(version: .http1_1, status: .notModified)) == .none)
        #expect(ResponseFraming.choose(requestMethod: .GET, clientVersion: .http1_1, upstream: sized) == .contentLength)
        #expect(ResponseFraming.choose(requestMethod: .GET, clientVersion: .http1_1, upstream: unsized) == .chunked)
        #expect(ResponseFraming.choose(requestMethod: .GET, clientVersion: .http1_0, upstream: unsized) == .closeDelimited)
    }

    @Test func aHeadResponseKeepsItsLengthButAChunkedOneDoesNot() {
        let sized = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "3"])
        #expect(HeaderPolicy.clientResponseHead(from: sized, framing: .none).headers["content-length"] == ["3"])
        let both = HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders([("Content-Length", "3"), ("Transfer-Encoding", "chunked")]))
        let out = HeaderPolicy.clientResponseHead(from: both, framing: .chunked)
        #expect(out.headers["content-length"].isEmpty)
        #expect(out.headers["transfer-encoding"] == ["chunked"])
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
