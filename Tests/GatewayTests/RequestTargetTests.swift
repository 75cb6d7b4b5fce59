@testable import HTTPWire
import NIOCore
import NIOHTTP1
import Testing

/// Request-target and Host checks (`RequestTarget.normalise`) and the byte helpers the
/// request path uses, without sockets.
@Suite("Request target and byte helpers")
struct RequestTargetTests {
    private func normalise(_ uri: String, host: String? = "h", headers: [(String, String)] = []) -> Result<HTTPRequestHead, RequestTarget.Rejection> {
        var fields = headers
        if let host { fields.insert(("Host", host), at: 0) }
        return RequestTarget.normalise(HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(fields)))
    }

    private func rejection(_ result: Result<HTTPRequestHead, RequestTarget.Rejection>) -> RequestTarget.Rejection? {
        if case .failure(let rejection) = result { return rejection }
        return nil
    }

    @Test(arguments: ["h", "127.0.0.1:8080", "[::1]:443", "[2001:db8::1]", "a%41.example", "a-b_c~d.example:1", "h:"])
    func aValidHostIsAccepted(host: String) {
        #expect(RequestTarget.isValidHost(host))
        #expect(rejection(normalise("/x", host: host)) == nil)
    }

    @Test(arguments: ["a b", "a/b", "a@b", "h:1:2", "[::1", "[]", "[::1]x", "h:123456", "h:8o", "a%4", "a%zz", "a.example, b.example", "h\u{7F}"])
    func aMalformedHostIsRefused(host: String) {
        #expect(!RequestTarget.isValidHost(host))
        #expect(rejection(normalise("/x", host: host)) == .badHost)
    }

    @Test(arguments: [
        ("/\u{FFFD}", "x"), ("/x\u{FFFD}", "x"), ("/x", "\u{FFFD}"), ("/x", "ab\u{FFFD}"), ("/x", "\u{FFFD}ab"), ("/x", "a\u{FFFD}b\u{EF}"),
    ])
    func aReplacementCharacterAnywhereIsRefused(uri: String, value: String) {
        #expect(rejection(normalise(uri, headers: [("X-A", value)])) == .notUTF8)
        #expect(rejection(normalise("/x", headers: [(value == "x" ? "X-\u{FFFD}" : "X-B", "v")])) == (value == "x" ? .notUTF8 : nil))
    }

    @Test func bytesThatOnlyStartLikeAReplacementCharacterPass() {
        // EF BF BE (U+FFFE), EF BF alone at the end, and U+00EF: each holds 0xEF or its
        // neighbours, none is U+FFFD.
        for value in ["\u{FFFE}", "ab\u{FFEF}", "\u{EF}\u{BF}", "x\u{EFBF}"] {
            #expect(!RequestTarget.containsReplacement(value), "\(Array(value.utf8))")
        }
        #expect(RequestTarget.containsReplacement("\u{FFFE}\u{FFFD}"))
    }

    @Test func aFragmentIsRefusedAndAQueryKeepsItsBytes() throws {
        #expect(rejection(normalise("/acme#x")) == .fragment)
        #expect(rejection(normalise("/acme?a=1#x")) == .fragment)
        #expect(try normalise("/x/../acme/./y?q=/../%2F").get().uri == "/acme/y?q=/../%2F")
        #expect(try normalise("/acme/y?q").get().uri == "/acme/y?q")
    }

    @Test func utf8EqualityComparesEveryByte() {
        #expect(UTF8Bytes.equal("ssogate_session", "ssogate_session"[...]))
        #expect(!UTF8Bytes.equal("ssogate_session", "ssogate_sessioN"))
        #expect(!UTF8Bytes.equal("ssogate_session", "ssogate_sessio"))
        #expect(UTF8Bytes.equal("", ""[...]))
        #expect(UTF8Bytes.equal("é", "e\u{301}") == false, "bytes, not canonical equivalence")
        let long = String(repeating: "a", count: 300)
        #expect(UTF8Bytes.equal(long, long.dropFirst(0)))
        #expect(!UTF8Bytes.equal(long, "b" + long.dropFirst()))
    }

    @Test func utf8OffsetFindsTheFirstByte() {
        #expect(UTF8Bytes.offset(of: UInt8(ascii: "?"), in: "/a?b?c") == 2)
        #expect(UTF8Bytes.offset(of: UInt8(ascii: "?"), in: "/é?") == 3)
        #expect(UTF8Bytes.offset(of: UInt8(ascii: "?"), in: "/abc") == nil)
        #expect(UTF8Bytes.offset(of: UInt8(ascii: "?"), in: "") == nil)
    }

    @Test(arguments: [0, 1, 16, 40, 4096])
    func aHeadIsTheSameWhateverItsEstimate(estimate: Int) {
        let long = String(repeating: "v", count: 700)
        let fields = ByteBuffer(string: "A: 1\r\n")
        let raw: [UInt8] = Array("Raw: é\r\n".utf8)
        let head = raw.withUnsafeBufferPointer { rawBytes in
            ByteBufferAllocator().head(estimate: estimate) { out in
                out.put("HTTP/1.1 200 OK\r\n")
                out.put(fields)
                out.put(rawBytes)
                out.field("Long", long)
                out.field("Small", "s")
                out.put("\r\n")
            }
        }
        let expected = "HTTP/1.1 200 OK\r\nA: 1\r\nRaw: é\r\nLong: \(long)\r\nSmall: s\r\n\r\n"
        #expect(String(buffer: head) == expected)
        #expect(head.readableBytes == expected.utf8.count)
    }
}
