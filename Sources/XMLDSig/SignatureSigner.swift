import CryptoCore
import Foundation
import XMLCore

/// Signs an element in the one shape the verifier accepts: enveloped, exclusive C14N,
/// one Reference to the element's ID, the certificate in KeyInfo (for the relying party's
/// tooling; ssogate itself never reads it). Used by the development IdP and the tests;
/// `xmlsec1 --verify` checks its output in a test.
public struct SignatureSigner: Sendable {
    public let key: PrivateKey
    public let certificate: X509Certificate
    public let algorithm: SignatureAlgorithm

    public init(key: PrivateKey, certificate: X509Certificate, algorithm: SignatureAlgorithm? = nil) {
        self.key = key
        self.certificate = certificate
        self.algorithm = algorithm ?? (key.isRSA ? .rsaSHA256 : .ecdsaSHA256)
    }

    static let samlAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"

    /// Signs the element whose `ID` is `id` in `xml`. The Signature goes right after the
    /// element's saml:Issuer child, where the SAML schema wants it, else first.
    public func sign(_ xml: [UInt8], elementID id: String, inclusivePrefixes: [String] = []) throws -> [UInt8] {
        let document = try XMLDocument.parse(xml)
        let matches = document.elements(withID: id)
        guard matches.count == 1 else { throw DSigError.referenceMismatch("ID \(id) occurs \(matches.count) times") }
        let element = matches[0]
        let digest = try Digest.compute(algorithm.digest, element.exclusiveCanonicalization(inclusivePrefixes: inclusivePrefixes))
        let prefixes = inclusivePrefixes.isEmpty ? ""
            : "<ec:InclusiveNamespaces xmlns:ec=\"\(DSigURI.excC14N)\" PrefixList=\"\(inclusivePrefixes.joined(separator: " "))\"/>"
        let template = """
        <ds:Signature xmlns:ds="\(DSigURI.namespace)"><ds:SignedInfo>\
        <ds:CanonicalizationMethod Algorithm="\(DSigURI.excC14N)"/>\
        <ds:SignatureMethod Algorithm="\(DSigURI.uri(of: algorithm))"/>\
        <ds:Reference URI="#\(id)"><ds:Transforms><ds:Transform Algorithm="\(DSigURI.enveloped)"/>\
        <ds:Transform Algorithm="\(DSigURI.excC14N)">\(prefixes)</ds:Transform></ds:Transforms>\
        <ds:DigestMethod Algorithm="\(DSigURI.uri(of: algorithm.digest))"/>\
        <ds:DigestValue>\(Data(digest).base64EncodedString())</ds:DigestValue></ds:Reference></ds:SignedInfo>\
        <ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\
        \(Data(certificate.der).base64EncodedString())</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>
        """
        let issuer = element.children(named: "Issuer", in: Self.samlAssertion).first
        let signature = try document.insert(fragment: template, into: element, after: issuer)
        let signedInfo = signature.children(named: "SignedInfo", in: DSigURI.namespace)[0]
        let value = try key.sign(signedInfo.exclusiveCanonicalization(), algorithm: algorithm)
        document.setText(Data(value).base64EncodedString(), of: signature.children(named: "SignatureValue", in: DSigURI.namespace)[0])
        return document.serialized()
    }
}
