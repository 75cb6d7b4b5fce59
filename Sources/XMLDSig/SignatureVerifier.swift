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
/// what was signed (docs/CODE-STYLE.md "The verifier returns only what was signed").
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

        // Shape and algorithms first, from the document's SignedInfo: nothing is
        // canonicalized for a signature that could not be accepted anyway, and what the
        // sender chose to make costly (the PrefixList) is bounded before it is used.
        let claimed = try Self.read(signedInfo, expectedURI: "#" + id, allowInsecureSHA1: allowInsecureSHA1)
        guard parts[1].children.isEmpty, let signatureValue = Self.base64(parts[1].textContent, maxCharacters: Self.maxSignatureValueCharacters)
        else { throw .malformed("SignatureValue is not base64 of a plausible size") }

        // SignedInfo, canonicalized by its own method, is what the signature covers.
        let signedInfoBytes: [UInt8]
        do {
            signedInfoBytes = try signedInfo.exclusiveCanonicalization(withComments: claimed.withComments, inclusivePrefixes: claimed.prefixes)
        } catch {
            if error == .tooComplex { throw .tooComplex(error.reason) }
            throw .malformed("SignedInfo does not canonicalize: \(error.reason)")
        }
        guard let verifier = trusted.first(where: { $0.key.verify(signature: signatureValue, of: signedInfoBytes, algorithm: claimed.algorithm) }) else {
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
        let plan = try Self.read(verifiedInfo, expectedURI: "#" + id, allowInsecureSHA1: allowInsecureSHA1)
        let algorithm = plan.algorithm
        let (withComments, prefixes, digestAlgorithm, expected) = (plan.reference.withComments, plan.reference.prefixes,
                                                                   plan.reference.digest, plan.reference.expected)

        // The enveloped-signature transform: the element without its Signature.
        let signedBytes: [UInt8]
        do {
            signedBytes = try element.exclusiveCanonicalization(excluding: signature, withComments: withComments, inclusivePrefixes: prefixes)
        } catch {
            if error == .tooComplex { throw .tooComplex(error.reason) }
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

    /// Longest SignatureValue text accepted: RSA-8192 is 1,366 base64 characters, plus
    /// line breaks every 64.
    static let maxSignatureValueCharacters = 2_048
    /// InclusiveNamespaces PrefixList entries accepted: Okta sends `xs`, others `xs xsi`.
    /// exclusive C14N in libxml2 walks this list and the namespaces in scope for every
    /// element it passes, so its length multiplies the cost of every canonicalization.
    static let maxInclusivePrefixes = 8

    /// What a SignedInfo says, every part checked against the allowlist.
    struct SignedInfoPlan {
        var withComments: Bool
        var prefixes: [String]
        var algorithm: SignatureAlgorithm
        var reference: ReferencePlan
    }

    struct ReferencePlan {
        var withComments: Bool
        var prefixes: [String]
        var digest: DigestAlgorithm
        var expected: [UInt8]
    }

    /// SignedInfo is CanonicalizationMethod, SignatureMethod and one Reference to
    /// `expectedURI`, in that order and nothing else; every algorithm is allowed. Read
    /// twice: from the document before anything is canonicalized (a cheap refusal), and
    /// from the verified bytes (what counts).
    static func read(_ signedInfo: XMLElement, expectedURI: String, allowInsecureSHA1: Bool) throws(DSigError) -> SignedInfoPlan {
        let ns = DSigURI.namespace
        let parts = signedInfo.children
        guard parts.count == 3, parts[0].isNamed("CanonicalizationMethod", in: ns), parts[1].isNamed("SignatureMethod", in: ns),
              parts[2].isNamed("Reference", in: ns) else {
            let references = signedInfo.children(named: "Reference", in: ns).count
            if references != 1 { throw .malformed("SignedInfo has \(references) References") }
            throw .malformed("SignedInfo must be CanonicalizationMethod, SignatureMethod and one Reference")
        }
        guard let c14nURI = parts[0].attribute("Algorithm") else { throw .malformed("CanonicalizationMethod missing") }
        guard c14nURI == DSigURI.excC14N || c14nURI == DSigURI.excC14NWithComments else {
            throw .algorithmNotAllowed("canonicalization \(c14nURI)")
        }
        guard let methodURI = parts[1].attribute("Algorithm") else { throw .malformed("SignatureMethod missing") }
        guard let algorithm = DSigURI.signatureMethods[methodURI] else { throw .algorithmNotAllowed("signature method \(methodURI)") }
        if algorithm == .insecureRSASHA1 && !allowInsecureSHA1 { throw .algorithmNotAllowed("RSA-SHA1 without allow_sha1") }

        let reference = parts[2]
        guard reference.attribute("URI") == expectedURI else {
            throw .referenceMismatch("Reference URI \(reference.attribute("URI") ?? "none") is not \(expectedURI)")
        }
        let (withComments, prefixes) = try transforms(of: reference)
        let digestMethods = reference.children(named: "DigestMethod", in: ns)
        guard digestMethods.count == 1, let digestURI = digestMethods[0].attribute("Algorithm") else { throw .malformed("DigestMethod missing") }
        guard let digest = DSigURI.digestMethods[digestURI] else { throw .algorithmNotAllowed("digest method \(digestURI)") }
        if digest == .insecureSHA1 && !allowInsecureSHA1 { throw .algorithmNotAllowed("SHA-1 digest without allow_sha1") }
        let digestValues = reference.children(named: "DigestValue", in: ns)
        guard digestValues.count == 1, let expected = base64(digestValues[0].textContent, maxCharacters: 256) else {
            throw .malformed("DigestValue missing or not base64")
        }
        return SignedInfoPlan(withComments: c14nURI == DSigURI.excC14NWithComments, prefixes: try prefixList(parts[0]),
                              algorithm: algorithm,
                              reference: ReferencePlan(withComments: withComments, prefixes: prefixes, digest: digest, expected: expected))
    }

    /// The Reference's transforms: enveloped-signature, then exclusive C14N; nothing else.
    private static func transforms(of reference: XMLElement) throws(DSigError) -> (Bool, [String]) {
        let lists = reference.children(named: "Transforms", in: DSigURI.namespace)
        guard lists.count == 1 else { throw .algorithmNotAllowed("Reference must have one Transforms") }
        let items = lists[0].children
        guard items.count == 2, items.allSatisfy({ $0.isNamed("Transform", in: DSigURI.namespace) }) else {
            throw .algorithmNotAllowed("Transforms must hold exactly two Transform elements")
        }
        let uris = items.map { $0.attribute("Algorithm") ?? "" }
        guard uris[0] == DSigURI.enveloped, uris[1] == DSigURI.excC14N || uris[1] == DSigURI.excC14NWithComments
        else { throw .algorithmNotAllowed("transforms \(uris) (only enveloped-signature then exclusive C14N)") }
        return (uris[1] == DSigURI.excC14NWithComments, try prefixList(items[1]))
    }

    /// The InclusiveNamespaces PrefixList: at most `maxInclusivePrefixes` distinct NCNames
    /// (or `#default`), or the document is refused before canonicalization.
    private static func prefixList(_ element: XMLElement) throws(DSigError) -> [String] {
        let lists = element.children(named: "InclusiveNamespaces", in: DSigURI.excC14N)
        guard lists.count <= 1 else { throw .malformed("several InclusiveNamespaces") }
        guard let text = lists.first?.attribute("PrefixList") else { return [] }
        var prefixes: [String] = []
        for entry in text.utf8.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            let prefix = String(decoding: entry, as: UTF8.self)
            guard prefix == "#default" || entry.allSatisfy({ byte in
                (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
                    || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte >= 0x80
            }) else { throw .malformed("PrefixList entry is not a namespace prefix") }
            if prefixes.contains(prefix) { continue }
            prefixes.append(prefix)
            guard prefixes.count <= maxInclusivePrefixes else {
                throw .malformed("PrefixList names more than \(maxInclusivePrefixes) prefixes")
            }
        }
        return prefixes
    }

    /// Base64 as found in SignatureValue/DigestValue: often wrapped at 64 columns, so XML
    /// whitespace is ignored; anything else that is not base64 is an error.
    static func base64(_ text: String, maxCharacters: Int = maxSignatureValueCharacters) -> [UInt8]? {
        guard text.utf8.count <= maxCharacters, let bytes = Base64.decode(text, skippingXMLWhitespace: true),
              !bytes.isEmpty else { return nil }
        return bytes
    }
}
