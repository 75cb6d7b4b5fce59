import CryptoCore
import Foundation
import Testing
import TestFixtures
import XMLCore
import XMLDSig
@testable import SAML

/// The golden files of Tests/Fixtures/saml, signed by Debian's xmlsec1 (a third-party
/// signer) with make-fixtures.sh; each is named by its case and has one verdict.
@Suite("Golden SAML files signed by xmlsec1")
struct GoldenAttackTests {
    enum Verdict: Sendable, CustomStringConvertible {
        case accept(nameID: String)
        case reject(String)
        var description: String {
            switch self {
            case .accept(let n): return "accept \(n)"
            case .reject(let c): return "reject \(c)"
            }
        }
    }

    struct Case: Sendable, CustomStringConvertible {
        let file: String
        let verdict: Verdict
        var sha1 = false
        var idpInitiated = false
        var request: String? = "id-request-1"
        /// The SP key pair is configured (keys/sp-rsa.key decrypts).
        var spKey = false
        var requireEncrypted = false
        var description: String { "\(file) → \(verdict)" }
    }

    static let alice = "alice@example.test"
    static let cases: [Case] = [
        Case(file: "valid-assertion-signed", verdict: .accept(nameID: alice)),
        Case(file: "valid-response-signed", verdict: .accept(nameID: alice)),
        Case(file: "valid-both-signed", verdict: .accept(nameID: alice)),
        Case(file: "valid-ecdsa-assertion-signed", verdict: .accept(nameID: alice)),
        // r or s begins with a zero byte: the raw r||s to DER conversion must keep it.
        Case(file: "valid-ecdsa-leading-zero-in-signature", verdict: .accept(nameID: alice)),
        Case(file: "valid-idp-initiated", verdict: .accept(nameID: alice), idpInitiated: true, request: nil),
        Case(file: "valid-idp-initiated", verdict: .reject("unsolicited_not_allowed"), request: nil),
        Case(file: "valid-rsa-sha1", verdict: .accept(nameID: alice), sha1: true),
        Case(file: "rsa-sha1-without-opt-in", verdict: .reject("algorithm_not_allowed")),
        // The full text is read; a parser that stopped at the comment would see alice@example.test.
        Case(file: "valid-comment-in-nameid", verdict: .accept(nameID: "alice@example.test.evil.test")),
        Case(file: "comment-truncation-attack", verdict: .accept(nameID: "alice@example.test.evil.test")),
        Case(file: "signature-stripped", verdict: .reject("signature_missing")),
        Case(file: "signed-by-attacker-key", verdict: .reject("signature_invalid")),
        Case(file: "value-changed-after-signing", verdict: .reject("digest_mismatch")),
        Case(file: "reference-to-other-element", verdict: .reject("reference_mismatch")),
        Case(file: "two-references", verdict: .reject("signature_malformed")),
        Case(file: "extra-transform", verdict: .reject("algorithm_not_allowed")),
        Case(file: "doctype-billion-laughs", verdict: .reject("dtd_forbidden")),
        Case(file: "doctype-external-entity", verdict: .reject("dtd_forbidden")),
        Case(file: "expired", verdict: .reject("expired")),
        Case(file: "not-yet-valid", verdict: .reject("not_yet_valid")),
        Case(file: "subject-confirmation-expired", verdict: .reject("subject_confirmation_expired")),
        Case(file: "wrong-audience", verdict: .reject("audience_mismatch")),
        Case(file: "wrong-recipient", verdict: .reject("recipient_mismatch")),
        Case(file: "wrong-destination", verdict: .reject("destination_mismatch")),
        Case(file: "wrong-issuer", verdict: .reject("issuer_mismatch")),
        Case(file: "unknown-in-response-to", verdict: .reject("in_response_to_unknown")),
        Case(file: "status-not-success", verdict: .reject("status_not_success")),
        Case(file: "two-assertions", verdict: .reject("multiple_assertions")),
        // Signature wrapping: every permutation leaves a second Assertion in the document
        // (rule 3), and none may yield the attacker's identity.
        Case(file: "xsw1-response-wraps-signed-response-in-signature-object", verdict: .reject("multiple_assertions")),
        Case(file: "xsw2-response-wraps-signed-response-before-signature", verdict: .reject("multiple_assertions")),
        Case(file: "xsw3-unsigned-assertion-before-signed-assertion", verdict: .reject("multiple_assertions")),
        Case(file: "xsw4-unsigned-assertion-wraps-signed-assertion", verdict: .reject("multiple_assertions")),
        Case(file: "xsw5-edited-assertion-original-copy-appended", verdict: .reject("multiple_assertions")),
        Case(file: "xsw6-edited-assertion-original-copy-inside-signature", verdict: .reject("multiple_assertions")),
        Case(file: "xsw7-unsigned-assertion-copy-in-extensions", verdict: .reject("multiple_assertions")),
        Case(file: "xsw8-edited-assertion-original-copy-in-signature-object", verdict: .reject("multiple_assertions")),
        // EncryptedAssertion (make-encrypted-fixtures.py: xmlsec1 --encrypt, and Python's
        // cryptography for xmlenc11 RSA-OAEP with SHA-256). Every allowed pair opens.
        Case(file: "encrypted/oaep-mgf1p-aes128-cbc", verdict: .accept(nameID: alice), spKey: true),
        Case(file: "encrypted/oaep-mgf1p-aes256-cbc", verdict: .accept(nameID: alice), spKey: true),
        Case(file: "encrypted/oaep-mgf1p-aes128-gcm", verdict: .accept(nameID: alice), spKey: true),
        Case(file: "encrypted/oaep-mgf1p-aes256-gcm", verdict: .accept(nameID: alice), spKey: true, requireEncrypted: true),
        Case(file: "encrypted/xmlenc11-oaep-sha256-aes256-gcm", verdict: .accept(nameID: alice), spKey: true),
        Case(file: "encrypted/xmlenc11-oaep-sha256-mgf1sha256-aes128-gcm", verdict: .accept(nameID: alice), spKey: true),
        Case(file: "encrypted/response-signed-over-encrypted", verdict: .accept(nameID: alice), spKey: true),
        // Without the SP key pair, and plain assertions when encryption is required.
        Case(file: "encrypted/oaep-mgf1p-aes256-gcm", verdict: .reject("encrypted_assertion_unsupported")),
        Case(file: "valid-assertion-signed", verdict: .reject("assertion_not_encrypted"), spKey: true, requireEncrypted: true),
        // Refused before anything is decrypted, with codes of their own.
        Case(file: "encrypted/rsa-1_5-key-transport", verdict: .reject("key_transport_refused"), spKey: true),
        Case(file: "encrypted/encrypted-and-plain-assertion", verdict: .reject("multiple_assertions"), spKey: true),
        // The Response's signature is checked before decryption: a changed byte under it is its digest.
        Case(file: "encrypted/tampered-under-response-signature", verdict: .reject("digest_mismatch"), spKey: true),
        // After decryption starts, one code for everything (no padding or parse oracle).
        Case(file: "encrypted/tampered-cbc-ciphertext", verdict: .reject("decryption_failed"), spKey: true),
        Case(file: "encrypted/tampered-gcm-ciphertext", verdict: .reject("decryption_failed"), spKey: true),
        Case(file: "encrypted/encrypted-to-another-key", verdict: .reject("decryption_failed"), spKey: true),
        Case(file: "encrypted/unsigned-assertion-unsigned-response", verdict: .reject("decryption_failed"), spKey: true),
    ]

    static func path(_ name: String) -> String { Fixture.path("saml/\(name)") }

    static func validator(_ c: Case) throws -> ResponseValidator {
        XMLLibrary.initialize()
        let certs = try ["keys/idp-rsa.crt", "keys/idp-ec.crt"].map {
            try X509Certificate.parseAll(pem: String(contentsOfFile: path($0), encoding: .utf8))[0]
        }
        let settings = ServiceProviderSettings(
            entityID: "https://hub.example.test/organizations/acme/saml/metadata",
            acsURL: "https://hub.example.test/organizations/acme/saml/consume",
            idpEntityID: "http://www.okta.com/exk-test", trusted: try certs.map { try TrustedKey(certificate: $0) },
            allowInsecureSHA1: c.sha1, allowIdPInitiated: c.idpInitiated, clockSkew: 60,
            decryptionKey: c.spKey ? try PrivateKey(pem: String(contentsOfFile: path("keys/sp-rsa.key"), encoding: .utf8)) : nil,
            requireEncryptedAssertions: c.requireEncrypted)
        let now = SAMLTime.parse("2026-01-01T10:01:00Z")!
        return ResponseValidator(settings: settings, replayCache: MemoryReplayCache(), clock: { now })
    }

    @Test(arguments: cases)
    func golden(_ c: Case) throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.path(c.file + ".xml"))))
        let validator = try Self.validator(c)
        switch c.verdict {
        case .accept(let nameID):
            let result = try validator.validate(xml: bytes, expectedRequestID: c.request)
            #expect(result.nameID == nameID)
        case .reject(let code):
            do {
                let result = try validator.validate(xml: bytes, expectedRequestID: c.request)
                Issue.record("\(c.file) was accepted as \(result.nameID)")
            } catch {
                #expect(error.code == code, "\(c.file): \(error)")
            }
        }
    }

    /// Whatever went wrong once decryption started, the refusal reads the same (code and
    /// detail): a tampered ciphertext cannot tell the sender anything about the plaintext.
    @Test func everyFailureAfterDecryptionStartedReadsTheSame() throws {
        let files = ["tampered-cbc-ciphertext", "tampered-gcm-ciphertext", "encrypted-to-another-key", "unsigned-assertion-unsigned-response"]
        var refusals = Set<String>()
        for file in files {
            let c = Case(file: "encrypted/" + file, verdict: .reject("decryption_failed"), spKey: true)
            do {
                _ = try Self.validator(c).validate(xml: Array(try Data(contentsOf: URL(fileURLWithPath: Self.path(c.file + ".xml")))),
                                                   expectedRequestID: c.request)
            } catch {
                refusals.insert("\(error)")
            }
        }
        #expect(refusals.count == 1, "\(refusals)")
    }

    @Test func theBase64FormOfAValidFileIsAccepted() throws {
        let field = try String(contentsOfFile: Self.path("valid-both-signed.b64"), encoding: .utf8)
        let c = Self.cases[2]
        #expect(try Self.validator(c).validate(samlResponse: field, expectedRequestID: "id-request-1").nameID == Self.alice)
    }
}
