import CryptoCore
import Foundation
import XMLCore

/// A key the verifier trusts: from configuration only, never from the document's KeyInfo.
public struct TrustedKey: Sendable {
    public let certificate: X509Certificate
    public let key: PublicKey

    public init(certificate: X509Certificate) throws(CryptoError) {
        self.certificate = certificate
        self.key = try certificate.publicKey()
    }
}

/// What verification hands back: a new element parsed from exactly the bytes that were
/// digested (the signed element without its Signature), and which key verified it. Only
/// `SignatureVerifier` can make one, so holding one means the signature held.
public struct SignedElement: Sendable {
    public let element: XMLElement
    public let verifiedBy: X509Certificate
    public let algorithm: SignatureAlgorithm
    /// The canonical bytes that were digested (what the signer vouched for).
    public let signedBytes: [UInt8]

    fileprivate init(element: XMLElement, verifiedBy: X509Certificate, algorithm: SignatureAlgorithm, signedBytes: [UInt8]) {
        self.element = element
        self.verifiedBy = verifiedBy
        self.algorithm = algorithm
        self.signedBytes = signedBytes
    }
}

/// Verifies an enveloped XML-DSig signature held by an element as a direct child, in the
/// manner of goxmldsig: check the Signature's shape, verify SignedInfo, read the Reference
/// from the verified SignedInfo bytes, digest the transformed element and hand back only
/// what was signed (STYLE.md "The verifier returns only what was signed").
public struct SignatureVerifier: Sendable {
    public let trusted: [TrustedKey]
    /// RSA-SHA1 signatures and SHA-1 digests; off unless `allow_sha1: true`.
    public let allowInsecureSHA1: Bool

    public init(trusted: [TrustedKey], allowInsecureSHA1: Bool = false) {
        self.trusted = trusted
        self.allowInsecureSHA1 = allowInsecureSHA1
    }

    public func verify(_ element: XMLElement) throws(DSigError) -> SignedElement {
        let ns = DSigURI.namespace
        // Shape: exactly one Signature, a direct child of the signed element.
        let signatures = element.children(named: "Signature", in: ns)
        guard let signature = signatures.first else { throw .signatureMissing("\(element.localName) has no Signature child") }
        guard signatures.count == 1 else { throw .malformed("\(element.localName) has \(signatures.count) Signature children") }
        let parts = signature.children
        guard parts.count >= 2, parts[0].isNamed("SignedInfo", in: ns), parts[1].isNamed("SignatureValue", in: ns),
              parts.dropFirst(2).allSatisfy({ $0.isNamed("KeyInfo", in: ns) }), parts.count <= 3
        else {
            // Object (the XSW1/XSW2 hiding place) and any other extra are refused.
            throw .malformed("Signature must be SignedInfo, SignatureValue and at most KeyInfo")
        }
        let signedInfo = parts[0]

        // Which element does the document say is signed? It must be this one, uniquely.
        guard let id = element.attribute("ID"), !id.isEmpty else { throw .referenceMismatch("signed element has no ID") }
        let sameID = element.document.elements(withID: id)
        guard sameID.count == 1, sameID[0].isSame(as: element) else {
            throw .referenceMismatch("ID \(id) occurs \(sameID.count) times")
        }

        // SignedInfo, canonicalized by its own method, is what the signature covers.
        let (c14nWithComments, c14nPrefixes) = try canonicalizationMethod(of: signedInfo)
        let methods = signedInfo.children(named: "SignatureMethod", in: ns)
        guard methods.count == 1, let methodURI = methods[0].attribute("Algorithm") else { throw .malformed("SignatureMethod missing") }
        guard let algorithm = DSigURI.signatureMethods[methodURI] else { throw .algorithmNotAllowed("signature method \(methodURI)") }
        if algorithm == .insecureRSASHA1 && !allowInsecureSHA1 { throw .algorithmNotAllowed("RSA-SHA1 without allow_sha1") }
        let signedInfoBytes: [UInt8]
        do {
            signedInfoBytes = try signedInfo.exclusiveCanonicalization(withComments: c14nWithComments, inclusivePrefixes: c14nPrefixes)
        } catch {
            throw .malformed("SignedInfo does not canonicalize: \(error.reason)")
        }
        guard let signatureValue = Self.base64(parts[1].textContent) else { throw .malformed("SignatureValue is not base64") }
        guard let verifier = trusted.first(where: { $0.key.verify(signature: signatureValue, of: signedInfoBytes, algorithm: algorithm) }) else {
            throw .signatureInvalid("no configured certificate verifies SignedInfo (\(trusted.count) tried)")
        }

        // From here on, read only the SignedInfo that was verified: the canonical bytes,
        // parsed anew, not the document (which may hold a second, unsigned copy).
        let verifiedInfo: XMLElement
        do {
            verifiedInfo = try XMLDocument.parse(signedInfoBytes).root
        } catch {
            throw .malformed("verified SignedInfo does not parse: \(error.reason)")
        }
        let references = verifiedInfo.children(named: "Reference", in: ns)
        guard references.count == 1 else { throw .malformed("SignedInfo has \(references.count) References") }
        let reference = references[0]
        guard reference.attribute("URI") == "#" + id else {
            throw .referenceMismatch("Reference URI \(reference.attribute("URI") ?? "none") is not #\(id)")
        }
        let (withComments, prefixes) = try transforms(of: reference)
        let digestMethods = reference.children(named: "DigestMethod", in: ns)
        guard digestMethods.count == 1, let digestURI = digestMethods[0].attribute("Algorithm") else { throw .malformed("DigestMethod missing") }
        guard let digestAlgorithm = DSigURI.digestMethods[digestURI] else { throw .algorithmNotAllowed("digest method \(digestURI)") }
        if digestAlgorithm == .insecureSHA1 && !allowInsecureSHA1 { throw .algorithmNotAllowed("SHA-1 digest without allow_sha1") }
        let digestValues = reference.children(named: "DigestValue", in: ns)
        guard digestValues.count == 1, let expected = Self.base64(digestValues[0].textContent) else { throw .malformed("DigestValue missing or not base64") }

        // The enveloped-signature transform: the element without its Signature.
        let signedBytes: [UInt8]
        do {
            signedBytes = try element.exclusiveCanonicalization(excluding: signature, withComments: withComments, inclusivePrefixes: prefixes)
        } catch {
            throw .malformed("signed element does not canonicalize: \(error.reason)")
        }
        let actual: [UInt8]
        do { actual = try Digest.compute(digestAlgorithm, signedBytes) } catch { throw .malformed("digest failed") }
        guard Digest.constantTimeEqual(actual, expected) else {
            throw .digestMismatch("digest of \(element.localName) #\(id) does not match its Reference")
        }

        // Hand back exactly what was digested, as a document of its own.
        do {
            let signed = try XMLDocument.parse(signedBytes)
            return SignedElement(element: signed.root, verifiedBy: verifier.certificate, algorithm: algorithm, signedBytes: signedBytes)
        } catch {
            throw .malformed("signed bytes do not parse: \(error.reason)")
        }
    }

    /// SignedInfo's CanonicalizationMethod: exclusive C14N only.
    private func canonicalizationMethod(of signedInfo: XMLElement) throws(DSigError) -> (Bool, [String]) {
        let methods = signedInfo.children(named: "CanonicalizationMethod", in: DSigURI.namespace)
        guard methods.count == 1, let uri = methods[0].attribute("Algorithm") else { throw .malformed("CanonicalizationMethod missing") }
        guard uri == DSigURI.excC14N || uri == DSigURI.excC14NWithComments else { throw .algorithmNotAllowed("canonicalization \(uri)") }
        return (uri == DSigURI.excC14NWithComments, Self.prefixList(methods[0]))
    }

    /// The Reference's transforms: enveloped-signature, then exclusive C14N; nothing else.
    private func transforms(of reference: XMLElement) throws(DSigError) -> (Bool, [String]) {
        let lists = reference.children(named: "Transforms", in: DSigURI.namespace)
        guard lists.count == 1 else { throw .algorithmNotAllowed("Reference must have one Transforms") }
        let items = lists[0].children
        guard items.allSatisfy({ $0.isNamed("Transform", in: DSigURI.namespace) }) else { throw .malformed("unexpected element in Transforms") }
        let uris = items.map { $0.attribute("Algorithm") ?? "" }
        guard uris.count == 2, uris[0] == DSigURI.enveloped,
              uris[1] == DSigURI.excC14N || uris[1] == DSigURI.excC14NWithComments
        else { throw .algorithmNotAllowed("transforms \(uris) (only enveloped-signature then exclusive C14N)") }
        return (uris[1] == DSigURI.excC14NWithComments, Self.prefixList(items[1]))
    }

    private static func prefixList(_ element: XMLElement) -> [String] {
        element.children(named: "InclusiveNamespaces", in: DSigURI.excC14N).first?
            .attribute("PrefixList")?.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
            .map(String.init) ?? []
    }

    /// Base64 as found in SignatureValue/DigestValue: often wrapped at 64 columns, so XML
    /// whitespace is ignored; anything else that is not base64 is an error.
    static func base64(_ text: String) -> [UInt8]? {
        // Filtered as bytes: "\r\n" is one Character, which a Character filter would keep.
        let compact = String(decoding: text.utf8.filter { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }, as: UTF8.self)
        guard !compact.isEmpty, let data = Data(base64Encoded: compact) else { return nil }
        return Array(data)
    }
}
