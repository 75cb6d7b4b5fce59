import Foundation
import NIOHTTP1
@testable import Gateway
@testable import HTTPWire
import Testing

/// The form and query decoder agrees with Foundation's `removingPercentEncoding` (after `+`
/// → space), including where that says nil, without its cost.
@Suite("Form field decoding")
struct RequestFieldsTests {
    @Test(arguments: ["a+b", "a%20b", "%C3%A9t%C3%A9", "%2B%2F%3D", "plain", "", "%", "%2", "%zz", "a%2Gb", "%FF", "%C3", "%e2%82%ac", "+%2b+"])
    func decodesLikeFoundation(input: String) {
        let expected = input.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        #expect(RequestFields.decode(Substring(input)) == expected, "\(input)")
    }

    @Test func aFormKeepsTheFirstValueOfAName() {
        let form = RequestFields.form("SAMLResponse=PD94%2Bbw%3D%3D&RelayState=%2Facme%2Fx&SAMLResponse=second&bad=%zz")
        #expect(form["SAMLResponse"] == "PD94+bw==")
        #expect(form["RelayState"] == "/acme/x")
        #expect(form["bad"] == "")
    }
}

/// The one-cookie lookup of the request path agrees with the whole-header parser, and the
/// gateway's cookies leave the Cookie field the upstream gets.
@Suite("Cookie fields on bytes")
struct CookieFieldTests {
    static let fields = [
        "a=1; ssogate_session=v1.abc; b=2", "ssogate_session=first;ssogate_session=second", "  ssogate_session = spaced ; x=y",
        "\tssogate_session=v1.tab\t;", "noequals; ssogate_session=", "ssogate_session", "x=é; ssogate_session=ü=ü", ";;", "",
        "ssogate_session=a=b=c", "ssogate_sessionx=1; xssogate_session=2",
    ]

    @Test(arguments: fields)
    func findsTheCookieTheDictionaryWouldHave(field: String) {
        let headers = HTTPHeaders([("Cookie", field)])
        #expect(RequestFields.cookie(named: "ssogate_session", in: headers) == RequestFields.cookies(headers)["ssogate_session"],
                "\(field)")
    }

    @Test func theFirstCookieFieldWithTheNameWins() {
        let headers = HTTPHeaders([("Cookie", "a=1"), ("cookie", "ssogate_session=one"), ("COOKIE", "ssogate_session=two")])
        #expect(RequestFields.cookie(named: "ssogate_session", in: headers) == "one")
        #expect(RequestFields.cookie(named: "missing", in: headers) == nil)
    }

    @Test func theGatewaysCookiesAreDroppedAndTheRestKept() {
        let dropped = ["ssogate_session", "ssogate_session_login"]
        #expect(HeaderPolicy.cookieField("a=1; b=2", dropping: dropped) == "a=1; b=2")
        #expect(HeaderPolicy.cookieField("a=1;  ssogate_session=v1.x ;b=2", dropping: dropped) == "a=1; b=2")
        #expect(HeaderPolicy.cookieField("ssogate_session=v1.x; ssogate_session_login=v1.y", dropping: dropped) == nil)
        #expect(HeaderPolicy.cookieField("ssogate_session; a", dropping: dropped) == "a")
        #expect(HeaderPolicy.cookieField(" ; ", dropping: dropped) == nil)
        #expect(HeaderPolicy.cookieField("ssogate_sessionx=1", dropping: dropped) == "ssogate_sessionx=1")
        #expect(HeaderPolicy.cookieField("SSOGATE_SESSION=1", dropping: dropped) == "SSOGATE_SESSION=1", "cookie names are case-sensitive")
    }
}

@Suite("multipart/form-data bodies")
struct MultipartFormTests {
    static func body(_ boundary: String, _ parts: [(String, String?, String)], end: Bool = true) -> [UInt8] {
        var text = "preamble is ignored\r\n"
        for (name, file, content) in parts {
            text += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\(file.map { "; filename=\"\($0)\"" } ?? "")\r\n"
            text += file == nil ? "\r\n" : "Content-Type: text/xml\r\n\r\n"
            text += content + "\r\n"
        }
        if end { text += "--\(boundary)--\r\n" }
        return Array(text.utf8)
    }

    @Test func partsFieldsAndFilesAreRead() throws {
        let form = try #require(MultipartForm(Self.body("xYz", [("csrf", nil, "t0k"), ("metadata_file", "okta.xml", "<md/>\r\nline two"),
                                                                ("csrf", nil, "second")]), boundary: "xYz"))
        #expect(form.parts.count == 3)
        #expect(form.fields == ["csrf": "t0k"], "first of a name wins; files are not fields")
        #expect(form["metadata_file"]?.fileName == "okta.xml")
        #expect(form["metadata_file"]?.content == Array("<md/>\r\nline two".utf8), "CRLF inside content is kept")
    }

    @Test func theBoundaryComesFromTheContentType() {
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; boundary=----abc") == "----abc")
        #expect(MultipartForm.boundary(contentType: "Multipart/Form-Data; charset=utf-8; boundary=\"q u\"") == "q u")
        #expect(MultipartForm.boundary(contentType: "application/x-www-form-urlencoded") == nil)
        #expect(MultipartForm.boundary(contentType: "multipart/form-data") == nil)
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; boundary=" + String(repeating: "a", count: 71)) == nil)
    }

    @Test func malformedBodiesAreNil() {
        #expect(MultipartForm(Self.body("b", [("a", nil, "1")], end: false), boundary: "b") == nil, "no closing delimiter")
        #expect(MultipartForm(Array("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--".utf8), boundary: "b") == nil, "no Content-Disposition")
        #expect(MultipartForm(Array("--b\r\nContent-Disposition: form-data; name=\"a\"".utf8), boundary: "b") == nil, "headers never end")
        #expect(MultipartForm(Array("nothing here".utf8), boundary: "b") == nil)
        #expect(MultipartForm(Array("--bjunk\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b--".utf8), boundary: "b") == nil,
                "a delimiter is followed by its line end or --")
        #expect(MultipartForm(Array("--b--\r\n".utf8), boundary: "b")?.parts.isEmpty == true, "an empty form")
    }
}
