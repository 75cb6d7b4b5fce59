// ssogate-bench FIXTURES_DIR ITERATIONS: times the SAML engine on the golden fixtures.
// Names follow STYLE.md (`SAML:Validate:...`); prints one line per benchmark:
// NAME ops/s µs/op. Run it from benchmarks/saml-bench.sh, which puts xmlsec1 beside it.
import CryptoCore
import Foundation
import SAML
import XMLCore
import XMLDSig

/// Accepts every ID: the benchmark validates the same response over and over.
struct AcceptAllReplayCache: ReplayCache {
    func spend(_ id: String, until expiry: Date, now: Date) -> SpendResult { .spent }
}

let arguments = CommandLine.arguments
guard arguments.count == 3, let iterations = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: ssogate-bench FIXTURES_DIR ITERATIONS\n".utf8))
    exit(2)
}
let folder = arguments[1]
XMLLibrary.initialize()
func file(_ name: String) -> [UInt8] { Array(FileManager.default.contents(atPath: folder + "/" + name)!) }
let certificate = try X509Certificate.parseAll(pem: String(decoding: file("keys/idp-rsa.crt"), as: UTF8.self))[0]
let settings = ServiceProviderSettings(
    entityID: "https://hub.example.test/organizations/acme/saml/metadata",
    acsURL: "https://hub.example.test/organizations/acme/saml/consume",
    idpEntityID: "http://www.okta.com/exk-test", trusted: [try TrustedKey(certificate: certificate)],
    allowInsecureSHA1: false, allowIdPInitiated: false, clockSkew: 60)
let now = Date(timeIntervalSince1970: 1_767_261_660)  // 2026-01-01T10:01:00Z
let validator = ResponseValidator(settings: settings, replayCache: AcceptAllReplayCache(), clock: { now })

func measure(_ name: String, _ body: () throws -> Void) rethrows {
    for _ in 0..<max(10, iterations / 20) { try body() }  // warm-up
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<iterations { try body() }
    let nanos = Double(DispatchTime.now().uptimeNanoseconds - start)
    let perOp = nanos / Double(iterations) / 1000
    print(String(format: "%@ %.0f %.1f", name, 1_000_000 / perOp, perOp))
}

let both = file("valid-both-signed.xml")
let assertionSigned = file("valid-assertion-signed.xml")
try measure("SAML:Validate:BothSigned:RSA2048") { _ = try validator.validate(xml: both, expectedRequestID: "id-request-1") }
try measure("SAML:Validate:AssertionSigned:RSA2048") { _ = try validator.validate(xml: assertionSigned, expectedRequestID: "id-request-1") }
let verifier = SignatureVerifier(trusted: [try TrustedKey(certificate: certificate)])
try measure("XMLDSig:Verify:RSA2048") {
    let document = try XMLDocument.parse(assertionSigned)
    _ = try verifier.verify(document.root.children(named: "Assertion", in: "urn:oasis:names:tc:SAML:2.0:assertion")[0])
}
try measure("XMLCore:Parse") { _ = try XMLDocument.parse(both) }
