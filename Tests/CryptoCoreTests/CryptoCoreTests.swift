@testable import CryptoCore
import Foundation
import Testing
import TestFixtures

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

    static func fixture(_ name: String) -> String { Fixture.path("crypto/\(name)") }
}

@Suite("Signatures")
struct SignatureTests {
    static func text(_ name: String) throws -> String { try String(contentsOfFile: CryptoCoreTests.fixture(name), encoding: .utf8) }
    static func bytes(_ name: String) throws -> [UInt8] { Array(try Foundation.Data(contentsOf: URL(fileURLWithPath: CryptoCoreTests.fixture(name)))) }

    static func publicKey(_ cert: String) throws -> PublicKey { try X509Certificate.parseAll(pem: text(cert))[0].publicKey() }

    @Test func rsaSignaturesMadeByTheOpenSSLCommandLineVerify() throws {
        let key = try Self.publicKey("rsa-2048.crt")
        let message = try Self.bytes("message.txt")
        #expect(key.verify(signature: try Self.bytes("message.rsa-sha256.sig"), of: message, algorithm: .rsaSHA256))
        #expect(key.verify(signature: try Self.bytes("message.rsa-sha512.sig"), of: message, algorithm: .rsaSHA512))
        // The same signature under the wrong digest, or over other bytes, does not.
        #expect(!key.verify(signature: try Self.bytes("message.rsa-sha256.sig"), of: message, algorithm: .rsaSHA512))
        #expect(!key.verify(signature: try Self.bytes("message.rsa-sha256.sig"), of: message + [0x0A], algorithm: .rsaSHA256))
    }

    @Test func anECDSASignatureMadeByTheOpenSSLCommandLineVerifiesInRawForm() throws {
        let key = try Self.publicKey("ec-p256.crt")
        let message = try Self.bytes("message.txt")
        let raw = try PrivateKey.derToRaw(Self.bytes("message.ecdsa-sha256.der"), fieldBytes: 32)
        #expect(raw.count == 64)
        #expect(key.verify(signature: raw, of: message, algorithm: .ecdsaSHA256))
        var flipped = raw
        flipped[10] ^= 1
        #expect(!key.verify(signature: flipped, of: message, algorithm: .ecdsaSHA256))
        // An RSA algorithm with an EC key never verifies.
        #expect(!key.verify(signature: raw, of: message, algorithm: .rsaSHA256))
    }

    @Test(arguments: [SignatureAlgorithm.rsaSHA256, .rsaSHA384, .rsaSHA512, .insecureRSASHA1])
    func ourRSASignaturesVerify(algorithm: SignatureAlgorithm) throws {
        let signer = try PrivateKey(pem: Self.text("rsa-2048.key"))
        let message = Array("sign me".utf8)
        let signature = try signer.sign(message, algorithm: algorithm)
        #expect(try Self.publicKey("rsa-2048.crt").verify(signature: signature, of: message, algorithm: algorithm))
        #expect(try !Self.publicKey("ec-p256.crt").verify(signature: signature, of: message, algorithm: algorithm))
    }

    @Test(arguments: [SignatureAlgorithm.ecdsaSHA256, .ecdsaSHA384, .ecdsaSHA512])
    func ourECDSASignaturesAreRawAndVerify(algorithm: SignatureAlgorithm) throws {
        let signer = try PrivateKey(pem: Self.text("ec-p256.key"))
        let message = Array("sign me".utf8)
        let signature = try signer.sign(message, algorithm: algorithm)
        #expect(signature.count == 64)
        #expect(try Self.publicKey("ec-p256.crt").verify(signature: signature, of: message, algorithm: algorithm))
    }

    @Test func aWeakRSAKeyIsRefused() throws {
        let cert = try X509Certificate.parseAll(pem: Self.text("rsa-1024.crt"))[0]
        #expect(throws: CryptoError.keyTooWeak) { try cert.publicKey() }
    }

    @Test func constantTimeEqualityIsEquality() {
        #expect(Digest.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!Digest.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!Digest.constantTimeEqual([1, 2, 3], [1, 2]))
    }

    @Test func digestsMatchKnownVectors() throws {
        let abc = Array("abc".utf8)
        func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(try Digest.compute(.insecureSHA1, abc)) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(try Digest.compute(.sha384, abc)).hasPrefix("cb00753f45a35e8bb5a03d699ac65007"))
        #expect(hex(try Digest.compute(.sha512, abc)).hasPrefix("ddaf35a193617abacc417349ae204131"))
    }
}

@Suite("AEAD and HKDF")
struct AEADTests {
    func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var chars = Array(s)
        while chars.count >= 2 { out.append(UInt8(String(chars[0..<2]), radix: 16)!); chars.removeFirst(2) }
        return out
    }

    /// RFC 5869 test case 1.
    @Test func hkdfMatchesTheRFCVector() {
        let okm = AEAD.hkdfSHA256(secret: hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), salt: hex("000102030405060708090a0b0c"),
                                  info: hex("f0f1f2f3f4f5f6f7f8f9"), length: 42)
        #expect(okm == hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"))
    }

    /// NIST GCM test vector (AES-256, 96-bit IV, with AAD).
    @Test func aesGCMMatchesAKnownVector() throws {
        let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
        let nonce = hex("cafebabefacedbaddecaf888")
        let plaintext = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let sealed = try AEAD.seal(plaintext, key: key, nonce: nonce, aad: aad)
        #expect(Array(sealed.suffix(16)) == hex("76fc6ece0f4e1768cddf8853bb2d551b"))
        #expect(AEAD.open(sealed, key: key, nonce: nonce, aad: aad) == plaintext)
        var tampered = sealed
        tampered[0] ^= 1
        #expect(AEAD.open(tampered, key: key, nonce: nonce, aad: aad) == nil)
        #expect(AEAD.open(sealed, key: key, nonce: nonce, aad: aad + [0]) == nil)
    }
}

@Suite("Self-signed identity")
struct SelfSignedTests {
    @Test func aFreshKeyAndCertificateSignAndVerify() throws {
        let identity = try SelfSignedIdentity.generate(commonName: "ssogate-dev-idp")
        #expect(identity.certificate.subject.contains("CN=ssogate-dev-idp"))
        #expect(identity.certificate.notAfter > identity.certificate.notBefore)
        let message = Array("dev idp".utf8)
        let signature = try identity.key.sign(message, algorithm: .rsaSHA256)
        #expect(try identity.certificate.publicKey().verify(signature: signature, of: message, algorithm: .rsaSHA256))
        #expect(try X509Certificate.parseAll(pem: identity.certificatePEM)[0].sha256Fingerprint == identity.certificate.sha256Fingerprint)
        #expect(try SelfSignedIdentity.generate(commonName: "x").certificate.sha256Fingerprint != identity.certificate.sha256Fingerprint)
    }
}

@Suite("Base64 encoding")
struct Base64EncodingTests {
    @Test(arguments: [0, 1, 2, 3, 4, 5, 31, 32, 33, 100])
    func encodesAsFoundationAndDecodesBack(length: Int) throws {
        let bytes = try SecureRandom().bytes(length)
        let standard = Base64.encode(bytes)
        #expect(standard == Data(bytes).base64EncodedString())
        let url = Base64.encode(bytes, alphabet: .url)
        #expect(url == standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: ""))
        #expect(Base64.decode(standard) == bytes)
        #expect(Base64.decode(url, alphabet: .url) == bytes)
    }
}
