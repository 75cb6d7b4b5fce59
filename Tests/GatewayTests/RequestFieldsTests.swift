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
