import CryptoCore
import Foundation
import XMLCore

/// Opens a saml:EncryptedAssertion (XML Encryption 1.0/1.1) with the SP's private key.
///
/// Allowed: key transport RSA-OAEP (`rsa-oaep-mgf1p`, and xmlenc11 `rsa-oaep` with its
/// DigestMethod and MGF), content AES-128/256-GCM and AES-128/256-CBC (real Okta tenants
/// send CBC). Refused before anything is decrypted: RSA PKCS#1 v1.5 key transport
/// (Bleichenbacher) and every other algorithm. Once decryption starts, every failure is
/// the one `decryption_failed` with one fixed detail, so that nothing (padding, tag, the
/// decrypted bytes not being an Assertion) can serve as an oracle.
struct AssertionDecryptor {
    static let xenc = "http://www.w3.org/2001/04/xmlenc#"
    static let xenc11 = "http://www.w3.org/2009/xmlenc11#"
    static let dsig = "http://www.w3.org/2000/09/xmldsig#"

    enum Content { case cbc, gcm }
    static let contentAlgorithms: [String: (keyBytes: Int, mode: Content)] = [
        xenc + "aes128-cbc": (16, .cbc),
        xenc + "aes256-cbc": (32, .cbc),
        xenc11 + "aes128-gcm": (16, .gcm),
        xenc11 + "aes256-gcm": (32, .gcm),
    ]
    static let oaepMGF1P = xenc + "rsa-oaep-mgf1p"
    static let oaep11 = xenc11 + "rsa-oaep"
    static let rsa15 = xenc + "rsa-1_5"
    static let digests: [String: XMLEncCiphers.Digest] = [
        "http://www.w3.org/2000/09/xmldsig#sha1": .sha1,
        xenc + "sha256": .sha256,
        "http://www.w3.org/2001/04/xmldsig-more#sha384": .sha384,
        xenc + "sha512": .sha512,
    ]
    static let mgfs: [String: XMLEncCiphers.Digest] = [
        xenc11 + "mgf1sha1": .sha1, xenc11 + "mgf1sha256": .sha256, xenc11 + "mgf1sha384": .sha384, xenc11 + "mgf1sha512": .sha512,
    ]

    /// The methods SP metadata advertises, strongest first.
    static let advertised = [xenc11 + "aes256-gcm", xenc11 + "aes128-gcm", xenc + "aes256-cbc", xenc + "aes128-cbc", oaep11, oaepMGF1P]

    static let failed = SAMLError("decryption_failed", "the EncryptedAssertion did not decrypt to one Assertion with this SP's key")

    let key: PrivateKey

    /// The decrypted Assertion, as the root of a document of its own.
    func decrypt(_ encryptedAssertion: XMLElement) throws(SAMLError) -> XMLElement {
        let plan = try Self.readStructure(encryptedAssertion)
        // From here on: one code, one detail.
        guard let wrapped = Data(base64Encoded: plan.wrappedKey, options: .ignoreUnknownCharacters),
              let sessionKey = XMLEncCiphers.unwrapOAEP(Array(wrapped), key: key, digest: plan.digest, mgf1: plan.mgf1),
              sessionKey.count == plan.content.keyBytes,
              let data = Data(base64Encoded: plan.cipherValue, options: .ignoreUnknownCharacters) else { throw Self.failed }
        let plaintext: [UInt8]?
        switch plan.content.mode {
        case .cbc: plaintext = XMLEncCiphers.decryptAESCBC(Array(data), key: sessionKey)
        case .gcm: plaintext = XMLEncCiphers.decryptAESGCM(Array(data), key: sessionKey)
        }
        guard let plaintext, let document = try? XMLDocument.parse(plaintext),
              document.root.isNamed("Assertion", in: SAMLNS.assertion) else { throw Self.failed }
        return document.root
    }

    private struct Plan {
        var content: (keyBytes: Int, mode: Content)
        var digest: XMLEncCiphers.Digest
        var mgf1: XMLEncCiphers.Digest
        var wrappedKey: String
        var cipherValue: String
    }

    /// Reads the EncryptedData and its one EncryptedKey (inside its KeyInfo, or beside it in
    /// the EncryptedAssertion as SAML also allows) and checks every algorithm, decrypting
    /// nothing. The errors here name what was sent: they depend on no secret.
    private static func readStructure(_ encryptedAssertion: XMLElement) throws(SAMLError) -> Plan {
        let data = encryptedAssertion.children(named: "EncryptedData", in: xenc)
        guard data.count == 1 else { throw SAMLError("malformed", "EncryptedAssertion holds \(data.count) EncryptedData") }
        let contentURI = data[0].children(named: "EncryptionMethod", in: xenc).first?.attribute("Algorithm") ?? ""
        guard let content = contentAlgorithms[contentURI] else {
            throw SAMLError("algorithm_not_allowed", "content encryption \(contentURI.isEmpty ? "not given" : contentURI)")
        }
        let keys = (data[0].children(named: "KeyInfo", in: dsig).first?.children(named: "EncryptedKey", in: xenc) ?? [])
            + encryptedAssertion.children(named: "EncryptedKey", in: xenc)
        guard keys.count == 1 else { throw SAMLError("malformed", "\(keys.count) EncryptedKey elements; exactly one is read") }
        let method = keys[0].children(named: "EncryptionMethod", in: xenc).first
        let transport = method?.attribute("Algorithm") ?? ""
        if transport == rsa15 {
            throw SAMLError("key_transport_refused", "RSA PKCS#1 v1.5 key transport (rsa-1_5) is refused; configure RSA-OAEP at the IdP")
        }
        guard transport == oaepMGF1P || transport == oaep11 else {
            throw SAMLError("algorithm_not_allowed", "key transport \(transport.isEmpty ? "not given" : transport)")
        }
        // OAEP's digest and mask function default to SHA-1 (a mask parameter, not a
        // signature digest: the SHA-1 signature policy does not apply).
        var digest = XMLEncCiphers.Digest.sha1
        if let uri = method?.children(named: "DigestMethod", in: dsig).first?.attribute("Algorithm") {
            guard let known = digests[uri] else { throw SAMLError("algorithm_not_allowed", "OAEP digest \(uri)") }
            digest = known
        }
        var mgf1 = XMLEncCiphers.Digest.sha1
        if let uri = method?.children(named: "MGF", in: xenc11).first?.attribute("Algorithm") {
            guard transport == oaep11, let known = mgfs[uri] else { throw SAMLError("algorithm_not_allowed", "OAEP mask \(uri)") }
            mgf1 = known
        }
        guard let wrapped = value(of: keys[0]), let cipher = value(of: data[0]) else {
            throw SAMLError("malformed", "CipherValue missing (CipherReference is not supported)")
        }
        return Plan(content: content, digest: digest, mgf1: mgf1, wrappedKey: wrapped, cipherValue: cipher)
    }

    private static func value(of element: XMLElement) -> String? {
        element.children(named: "CipherData", in: xenc).first?.children(named: "CipherValue", in: xenc).first?.textContent
    }
}
