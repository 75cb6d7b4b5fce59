import CryptoCore
import Foundation
import FuzzTargets
@testable import SAML
import TestFixtures
import Testing
import XMLCore
import XMLDSig

/// Each hostile shape is refused for what it is, or lies inside every bound (its cost is
/// then what `ssogate-bench hostile` reports). The shapes are those the review used to hold
/// a core for a minute with one unauthenticated POST.
@Suite("Hostile SAML shapes")
struct HostileShapeTests {
    static let now = Date()
    static let identity = try! SelfSignedIdentity.generate(commonName: "hostile-tests")
    static let shapes = try! HostileShapes.all(signer: SignatureSigner(key: identity.key, certificate: identity.certificate), now: now)

    @Test(arguments: shapes.map(\.name))
    func eachShapeHasItsOutcome(_ name: String) throws {
        XMLLibrary.initialize()
        let shape = try #require(Self.shapes.first { $0.name == name })
        let validator = try HostileShapes.validator(trusting: Self.identity.certificate, now: Self.now)
        let outcome: String
        do {
            _ = try validator.check(samlResponse: Data(shape.xml).base64EncodedString(), expectedRequestID: nil)
            outcome = "success"
        } catch {
            outcome = error.code
        }
        #expect(outcome == shape.outcome)
    }

    /// The attack of the review: a thousand-entry PrefixList on SignedInfo, signed with any
    /// key. Refused on SignedInfo's shape, before anything is canonicalized.
    @Test func aPrefixListFloodIsRefusedBeforeCanonicalization() throws {
        XMLLibrary.initialize()
        let shape = try #require(Self.shapes.first { $0.name == "prefix-list-flood" })
        let validator = try HostileShapes.validator(trusting: Self.identity.certificate, now: Self.now)
        #expect(throws: SAMLError.signatureMalformed) { try validator.check(xml: shape.xml, expectedRequestID: nil) }
    }
}

@Suite("Values byte-exact or refused")
struct IdentityValueTests {
    private func nameID(_ value: String) throws -> String {
        var shape = IdP.Shape(); shape.nameID = value
        return try IdP.validator().validate(xml: IdP.response(shape), expectedRequestID: "id-request-1").nameID
    }

    @Test func aNoBreakSpaceIsPartOfTheNameIDNotTrimmed() throws {
        // `victim@acme.com` + U+00A0 is another subject; trimming it made it the victim.
        #expect(try nameID("victim@acme.com\u{00A0}") == "victim@acme.com\u{00A0}")
        #expect(try nameID("\u{2003}victim@acme.com") == "\u{2003}victim@acme.com")
    }

    @Test func xmlWhitespaceAtTheEndsIsTrimmed() throws {
        #expect(try nameID("\n  alice@example.test \t") == "alice@example.test")
    }

    @Test(arguments: ["alice&#9;@example.test", "alice@example.test&#13;&#10;X-Evil: 1", "al&#127;ice", "al\u{0085}ice"])
    func aControlCharacterInTheNameIDRefusesTheLogin(_ value: String) throws {
        var shape = IdP.Shape(); shape.nameID = value
        #expect(throws: SAMLError("invalid_identity_value", "")) {
            try IdP.validator().validate(xml: IdP.response(shape), expectedRequestID: "id-request-1")
        }
    }

    @Test func identityValuesWithoutControlsAreClean() {
        #expect(IdentityValue.isClean("eng,hf-admins"))
        #expect(IdentityValue.isClean("Zoë Ōtake"))
        #expect(!IdentityValue.isClean("a\tb"))
        #expect(!IdentityValue.isClean("a\u{9F}b"))
    }
}

@Suite("Times that hold")
struct TimeRuleTests {
    @Test func aSubjectConfirmationNotBeforeInTheFutureIsRefused() throws {
        var shape = IdP.Shape(); shape.confirmationStart = "2026-01-01T10:03:00Z"  // now + 2 min, past the 60 s skew
        #expect(throws: SAMLError.notYetValid) { try IdP.validator().validate(xml: IdP.response(shape), expectedRequestID: "id-request-1") }
        shape.confirmationStart = "2026-01-01T10:01:30Z"  // within the skew
        _ = try IdP.validator().validate(xml: IdP.response(shape), expectedRequestID: "id-request-1")
    }

    @Test(arguments: ["2099-02-31T00:00:00Z", "2026-04-31T00:00:00Z", "2026-02-29T00:00:00Z", "2026-01-01T10:00:60Z", "2026-00-10T00:00:00Z"])
    func anImpossibleDateIsRefusedNotRolledOver(_ text: String) {
        #expect(SAMLTime.parse(text) == nil)
    }

    @Test func realDatesParse() {
        #expect(SAMLTime.parse("2028-02-29T23:59:59Z") != nil)
        #expect(SAMLTime.parse("2000-02-29T00:00:00Z") != nil)
        #expect(SAMLTime.parse("1900-02-29T00:00:00Z") == nil)
    }

    @Test func anImpossibleNotOnOrAfterRefusesTheLogin() throws {
        var shape = IdP.Shape(); shape.notOnOrAfter = "2026-02-31T10:05:00Z"
        #expect(throws: SAMLError.malformed) { try IdP.validator().validate(xml: IdP.response(shape), expectedRequestID: "id-request-1") }
    }
}

@Suite("Nothing after the document")
struct TrailingContentTests {
    @Test func aValidResponseFollowedByANulAndAnythingIsRefused() throws {
        let valid = try IdP.response()
        _ = try IdP.validator().validate(xml: valid, expectedRequestID: "id-request-1")
        #expect(throws: SAMLError.malformed) {
            try IdP.validator().validate(xml: valid + [0] + Array("<samlp:Response/>".utf8), expectedRequestID: "id-request-1")
        }
        #expect(throws: SAMLError.malformed) {
            try IdP.validator().validate(xml: valid + Array("garbage".utf8), expectedRequestID: "id-request-1")
        }
    }
}
