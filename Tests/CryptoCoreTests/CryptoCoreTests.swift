import CryptoCore
import Foundation
import Testing

@Suite("CryptoCore")
struct CryptoCoreTests {
    /// PEM markers around a DER prefix cut short: looks like a certificate, is not one.
    static let truncatedCertificate = """
    -----BEGIN CERTIFICATE-----
    MIIBfjCCASWgAwIBAgIUNfrS5oWlTi2Jdp/xlEqZgXIg4eMwCgYIKoZIzj0EAwIw
    FTETMBEGA1UEAwwKdGVzdC1pZHAtMTAeFw0yNjAxMDEwMDAwMDBaFw0zNjAxMDEw
    MDAwMDBaMBUxEzARBgNVBAMMCnRlc3QtaWRwLTEwWTATBgcqhkjOPQIBBggqhkjO
    PQMBBwNCAAQ=
    -----END CERTIFICATE-----
    """

    @Test func sha256MatchesAKnownVector() throws {
        let digest = try Digest.sha256(Array("abc".utf8))
        #expect(digest.map { String(format: "%02x", $0) }.joined() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func randomBytesAreRandom() throws {
        let a = try SecureRandom().bytes(32)
        let b = try SecureRandom().bytes(32)
        #expect(a.count == 32 && a != b)
    }

    @Test func aRealCertificateParsesWithItsFingerprintAndDates() throws {
        let pem = try String(contentsOfFile: Self.fixture("test-idp.pem"), encoding: .utf8)
        let certs = try X509Certificate.parseAll(pem: pem)
        #expect(certs.count == 1)
        let expected = try String(contentsOfFile: Self.fixture("test-idp.sha256"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(certs[0].sha256Fingerprint == expected)
        #expect(certs[0].notAfter > certs[0].notBefore)
        #expect(certs[0].subject.contains("CN=ssogate-test-idp"))
    }

    @Test func twoCertificatesInOneTextBothParse() throws {
        let pem = try String(contentsOfFile: Self.fixture("test-idp.pem"), encoding: .utf8)
        #expect(try X509Certificate.parseAll(pem: pem + "\n" + pem).count == 2)
    }

    @Test func textThatIsNotACertificateIsRefused() throws {
        #expect(throws: CryptoError.notPEMCertificate) { try X509Certificate.parseAll(pem: "hello") }
        #expect(throws: CryptoError.notPEMCertificate) { try X509Certificate.parseAll(pem: Self.truncatedCertificate) }
    }

    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/crypto/\(name)").path
    }
}
