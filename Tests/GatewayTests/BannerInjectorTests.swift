@testable import Gateway
@testable import Proxy
import NIOCore
import Testing

@Suite("Banner injection, streamed")
struct BannerInjectorTests {
    static let banner = "<div id=\"ssogate-banner\">B</div>"

    /// Feeds `html` split at every pair of boundaries and checks the result is always the same.
    private func inject(_ html: String, splits: [Int]) -> String {
        var injector = BannerInjector(banner: Self.banner)
        let bytes = Array(html.utf8)
        var out: [UInt8] = []
        var start = 0
        for cut in splits.sorted() + [bytes.count] where cut >= start && cut <= bytes.count {
            out += injector.feed(ByteBuffer(bytes: bytes[start..<cut]))
            start = cut
        }
        out += injector.finish()
        return String(decoding: out, as: UTF8.self)
    }

    private func everySplit(_ html: String, expected: String) {
        let n = html.utf8.count
        for a in 0...n {
            for b in stride(from: a, through: n, by: 3) {
                #expect(inject(html, splits: [a, b]) == expected, "split at \(a), \(b)")
            }
        }
    }

    @Test func theBannerGoesRightAfterTheBodyTagWhereverTheChunksSplit() {
        everySplit("<html><head><title>x</title></head><body class=\"page\"><p>hi</p></body></html>",
                   expected: "<html><head><title>x</title></head><body class=\"page\">\(Self.banner)<p>hi</p></body></html>")
    }

    @Test func aQuotedGreaterThanDoesNotEndTheTag() {
        everySplit("<BODY data-x='a>b' onload=\"f(1>0)\">t", expected: "<BODY data-x='a>b' onload=\"f(1>0)\">\(Self.banner)t")
    }

    @Test func lookalikesAreNotTheBody() {
        everySplit("<bodyguard>x</bodyguard><body>y", expected: "<bodyguard>x</bodyguard><body>\(Self.banner)y")
    }

    @Test func aPageWithoutBodyPassesThroughUnchanged() {
        everySplit("<html><p>no body tag <b>bold</b> <bo</p>", expected: "<html><p>no body tag <b>bold</b> <bo</p>")
    }

    @Test(arguments: [
        "<script>var s = '<body>';</script>", "<!-- <body> -->", "<title><body></title>", "<textarea><body></textarea>",
        "<style>p::after{content:'<body>'}</style>", "<div title=\"<body>\">", "<!DOCTYPE html><?xml <body> ?>",
        "<script>if (a</scriptx) '<body>'</script >", "<noscript><body></noscript>", "<![CDATA[<body>]]>", "</body><!-- x --->",
    ])
    func aBodyTagInsideScriptCommentTitleOrAttributeIsNotTheBody(prefix: String) {
        everySplit(prefix + "<p>x</p><body>y", expected: prefix + "<p>x</p><body>\(Self.banner)y")
    }

    @Test func plaintextNeverEnds() {
        everySplit("<plaintext><body>y", expected: "<plaintext><body>y")
    }

    @Test func onlyTheFirstBodyTagGetsTheBanner() {
        #expect(inject("<body><body>", splits: []) == "<body>\(Self.banner)<body>")
    }

    @Test func theBannerIsEscapedAndAccessible() {
        let html = BannerInjector.html(organization: "a<b", loginURL: "/organizations/a/sso?return_to=/x\"y")
        #expect(html.hasPrefix("<div id=\"ssogate-banner\" role=\"region\""))
        #expect(html.contains("a&lt;b") && html.contains("return_to=/x&quot;y") && html.contains(">Login with SSO</a>"))
    }
}
