// ssogate-bench FIXTURES_DIR ITERATIONS: times the SAML engine on the golden fixtures.
// Names follow docs/CODE-STYLE.md (`SAML:Validate:...`); prints one line per benchmark:
// NAME ops/s µs/op. Run it from benchmarks/saml-bench.sh, which puts xmlsec1 beside it.
//
// ssogate-bench hostile ROUNDS [WRITE_DIR]: CPU per ACS validation of each hostile shape
// (FuzzTargets.HostileShapes), base64 decoding included: NAME outcome bytes median-ms
// max-ms. With WRITE_DIR, writes each shape there (the fuzz corpus seeds) and exits.
import CryptoCore
import FuzzTargets
import Foundation
import SAML
import XMLCore
import XMLDSig

/// Accepts every ID: the benchmark validates the same response over and over.
struct AcceptAllReplayCache: ReplayCache {
    func spend(_ id: String, until expiry: Date, now: Date) -> SpendResult { .spent }
}

let arguments = CommandLine.arguments
if arguments.count >= 3, arguments[1] == "hostile", let rounds = Int(arguments[2]) {
    XMLLibrary.initialize()
    try hostile(rounds: rounds, writeTo: arguments.count > 3 ? arguments[3] : nil)
    exit(0)
}
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

/// This thread's CPU time in milliseconds.
func threadCPUMilliseconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) * 1000 + Double(t.tv_nsec) / 1_000_000
}

func hostile(rounds: Int, writeTo folder: String?) throws {
    let identity = try SelfSignedIdentity.generate(commonName: "hostile-bench")
    let now = Date()
    let shapes = try HostileShapes.all(signer: SignatureSigner(key: identity.key, certificate: identity.certificate), now: now)
    if let folder {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for shape in shapes { try Data(shape.xml).write(to: URL(fileURLWithPath: folder + "/hostile-" + shape.name + ".xml")) }
        return
    }
    let only = ProcessInfo.processInfo.environment["HOSTILE_ONLY"]
    for shape in shapes where only == nil || shape.name == only {
        let encoded = Data(shape.xml).base64EncodedString()
        var times: [Double] = []
        var outcome = ""
        for _ in 0..<rounds {
            // A fresh validator each round: the replay cache must not refuse round two.
            let validator = try HostileShapes.validator(trusting: identity.certificate, now: now)
            let start = threadCPUMilliseconds()
            do {
                _ = try validator.check(samlResponse: encoded, expectedRequestID: nil)
                outcome = "success"
            } catch {
                outcome = error.code
            }
            times.append(threadCPUMilliseconds() - start)
        }
        times.sort()
        print(String(format: "%@ %@ %d %.2f %.2f", shape.name, outcome, shape.xml.count, times[times.count / 2], times.last ?? 0))
    }
}
