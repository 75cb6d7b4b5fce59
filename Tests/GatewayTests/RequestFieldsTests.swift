import Foundation
@testable import Gateway
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
