import CryptoCore

/// XML-DSig algorithm identifiers, and the allowlist (docs/CODE-STYLE.md: by allowlist; the weak
/// ones only behind an option whose name says insecure).
enum DSigURI {
    static let namespace = "http://www.w3.org/2000/09/xmldsig#"
    static let excC14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
    static let excC14NWithComments = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
    static let enveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

    static let signatureMethods: [String: SignatureAlgorithm] = [
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1": .insecureRSASHA1,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": .rsaSHA256,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": .rsaSHA384,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": .rsaSHA512,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": .ecdsaSHA256,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": .ecdsaSHA384,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": .ecdsaSHA512,
    ]

    static let digestMethods: [String: DigestAlgorithm] = [
        "http://www.w3.org/2000/09/xmldsig#sha1": .insecureSHA1,
        "http://www.w3.org/2001/04/xmlenc#sha256": .sha256,
        "http://www.w3.org/2001/04/xmldsig-more#sha384": .sha384,
        "http://www.w3.org/2001/04/xmlenc#sha512": .sha512,
    ]

    static func uri(of algorithm: SignatureAlgorithm) -> String {
        signatureMethods.first { $0.value == algorithm }!.key
    }

    static func uri(of digest: DigestAlgorithm) -> String {
        digestMethods.first { $0.value == digest }!.key
    }
}

/// The signature methods by URI, as the XML verifier allows them, for signatures outside
/// XML (the query signature of SAML's HTTP-Redirect binding).
public enum SignatureMethod {
    public static func algorithm(uri: String) -> SignatureAlgorithm? { DSigURI.signatureMethods[uri] }
    public static func uri(of algorithm: SignatureAlgorithm) -> String { DSigURI.uri(of: algorithm) }
}
