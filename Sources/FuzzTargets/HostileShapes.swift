import CryptoCore
import Foundation
import SAML
import XMLCore
import XMLDSig

/// SAML responses shaped to make the ACS spend: each one either refused cheaply before the
/// costly step, or inside the bounds and so bounded in cost. The tests check each one's
/// outcome, `ssogate-bench hostile` times each one, and `make fuzz` seeds its corpus with
/// them. All fit the ACS's 256 KiB.
public enum HostileShapes {
    public struct Shape: Sendable {
        public let name: String
        public let xml: [UInt8]
        /// The reason code the ACS answers with, or `success` when the shape is inside every
        /// bound and validly signed (its cost is then the most a login can cost).
        public let outcome: String
    }

    public static let acsURL = "https://hub.example.test/organizations/acme/saml/consume"
    public static let entityID = "https://hub.example.test/organizations/acme/saml/metadata"
    public static let issuer = "http://idp.example.test/hostile"
    static let budget = ResponseValidator.maxDecodedBytes

    /// The validator every shape is checked against: `signer`'s certificate trusted,
    /// IdP-initiated logins allowed, `now` as the clock.
    public static func validator(trusting certificate: X509Certificate, now: Date) throws -> ResponseValidator {
        let settings = ServiceProviderSettings(entityID: entityID, acsURL: acsURL, idpEntityID: issuer,
                                               trusted: [try TrustedKey(certificate: certificate)],
                                               allowInsecureSHA1: false, allowIdPInitiated: true, clockSkew: 60)
        return ResponseValidator(settings: settings, replayCache: MemoryReplayCache(capacity: 64), clock: { now })
    }

    /// Every shape, signed by a key made for the occasion (the fuzz corpus's seeds).
    public static func all(now: Date) throws -> [Shape] {
        let identity = try SelfSignedIdentity.generate(commonName: "hostile-shapes")
        return try all(signer: SignatureSigner(key: identity.key, certificate: identity.certificate), now: now)
    }

    /// Every shape, signed by `signer` where a valid signature is part of the attack.
    public static func all(signer: SignatureSigner, now: Date) throws -> [Shape] {
        var shapes: [Shape] = []
        func add(_ name: String, _ outcome: String, _ xml: [UInt8]) {
            precondition(xml.count <= budget, "\(name) is \(xml.count) bytes")
            shapes.append(Shape(name: name, xml: xml, outcome: outcome))
        }
        let plain = Template(now: now)

        // The baseline: an Okta-shaped response, both signed.
        add("baseline-okta-shaped", "success", try plain.signed(signer))

        // The PrefixList attack: SignedInfo's own CanonicalizationMethod lists a thousand
        // prefixes, those the document declares among them, over thousands of elements; no
        // valid signature is needed, as canonicalization came before the signature check.
        var declared = Template(now: now)
        let prefixes = (0..<1_000).map { "p\($0)" }
        declared.extensions = declarations(levels: 2, leaves: 10_000)
        add("prefix-list-flood", "signature_malformed", declared.forged(signedInfoPrefixes: prefixes))
        var deepDeclarations = Template(now: now)
        deepDeclarations.extensions = declarations(levels: 28, leaves: 10_000)
        add("prefix-declarations-in-scope", "too_complex", deepDeclarations.forged(signedInfoPrefixes: prefixes))
        var onRoot = Template(now: now)
        onRoot.responseAttributes = (0..<1_000).map { " xmlns:p\($0)=\"urn:x:\($0)\"" }.joined()
        add("prefix-declarations-on-root", "too_complex", onRoot.forged(signedInfoPrefixes: prefixes))
        // Eight prefixes and many declarations in scope over thousands of elements, validly
        // signed so every step runs. (Past XMLElement.maxPrefixSearches the signer itself
        // refuses; and the signed element is canonicalized only once SignedInfo verified.)
        let eight = (0..<8).map { " xmlns:q\($0)=\"urn:x:q\($0)\"" }.joined()
        var belowBudget = Template(now: now)
        belowBudget.responseAttributes = eight
        belowBudget.extensions = declarations(levels: 2, leaves: 4_000)
        add("prefix-list-below-budget", "success", try belowBudget.signed(signer, prefixes: (0..<8).map { "q\($0)" }))

        // libxml2's duplicate-attribute check is quadratic in one element's attributes.
        var attributes = Template(now: now)
        attributes.extensions = "<e" + (0..<20_000).map { " a\($0)=\"\"" }.joined() + "/>"
        add("attribute-flood-one-element", "too_complex", attributes.forged())
        var spread = Template(now: now)
        spread.extensions = (0..<313).map { e in "<e" + (0..<32).map { " a\($0)=\"\(e)\"" }.joined() + "/>" }.joined()
        add("attributes-10000-spread", "success", try spread.signed(signer))

        var namespaces = Template(now: now)
        namespaces.extensions = "<e" + (0..<5_000).map { " xmlns:n\($0)=\"urn:x:\($0)\"" }.joined() + "/>"
        add("namespace-declaration-flood", "too_complex", namespaces.forged())
        var manyDeclarations = Template(now: now)
        manyDeclarations.extensions = String(repeating: "<e" + (0..<16).map { " xmlns:n\($0)=\"u:\($0)\"" }.joined() + "/>", count: 500)
        add("namespace-declarations-at-limit", "success", try manyDeclarations.signed(signer))

        var deep = Template(now: now)
        deep.extensions = String(repeating: "<d>", count: 20_000) + String(repeating: "</d>", count: 20_000)
        add("deep-nesting", "too_complex", deep.forged())
        var deepAtLimit = Template(now: now)
        deepAtLimit.extensions = String(repeating: nested(depth: 29, each: "", leaves: "<e/>"), count: 500)
        add("deep-nesting-at-limit", "success", try deepAtLimit.signed(signer))

        var elements = Template(now: now)
        elements.extensions = String(repeating: "<e/>", count: 40_000)
        add("element-flood", "too_complex", elements.forged())
        var elementsAtLimit = Template(now: now)
        elementsAtLimit.extensions = String(repeating: "<e/>", count: 16_300)
        add("elements-at-limit", "success", try elementsAtLimit.signed(signer))

        // Thousands of groups: as many as 256 KiB holds in Okta's own spelling.
        var groups = Template(now: now)
        groups.groups = (0..<3_300).map { "g\($0)" }
        add("groups-3300", "success", try groups.signed(signer))

        add("references-flood", "signature_malformed", plain.forged(references: 500))
        add("transforms-flood", "algorithm_not_allowed", plain.forged(transforms: 3_000))
        add("signature-value-200k", "signature_malformed", plain.forged(signatureValue: String(repeating: "QUFB", count: 50_000)))

        var text = Template(now: now)
        text.extensions = "<e>" + String(repeating: "&#x41;", count: 40_000) + "</e>"
        add("character-references-40000", "success", try text.signed(signer))
        var comments = Template(now: now)
        comments.extensions = String(repeating: "<e><!--c--></e>", count: 15_000)
        add("comments-15000", "success", try comments.signed(signer))

        let valid = try plain.signed(signer)
        add("trailing-nul-and-junk", "malformed", valid + [0] + Array("<evil/>".utf8))
        add("trailing-element", "malformed", valid + Array("<samlp:Response/>".utf8))
        return shapes
    }

    /// `levels` nested elements declaring 16 prefixes each (`p0`...), around `leaves` empty elements.
    static func declarations(levels: Int, leaves: Int) -> String {
        (0..<levels).map { level in
            "<d" + (0..<16).map { " xmlns:p\(level * 16 + $0)=\"urn:x:\(level * 16 + $0)\"" }.joined() + ">"
        }.joined() + String(repeating: "<e/>", count: leaves) + String(repeating: "</d>", count: levels)
    }

    /// `<d each>` nested `depth` times around `leaves`.
    static func nested(depth: Int, each: String, leaves: String) -> String {
        String(repeating: "<d\(each)>", count: depth) + leaves + String(repeating: "</d>", count: depth)
    }

    /// An Okta-shaped response, IdP-initiated, with room for hostile content.
    struct Template {
        let now: Date
        var responseAttributes = ""
        /// Inside `samlp:Extensions`, which SAML lets carry any element.
        var extensions = ""
        var groups = ["engineering"]

        func time(_ offset: TimeInterval) -> String { SAMLTime.format(now.addingTimeInterval(offset)) }

        var xml: String {
            let values = groups.map { "<saml:AttributeValue xsi:type=\"xs:string\">\($0)</saml:AttributeValue>" }.joined()
            return """
            <samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"\(responseAttributes) \
            ID="id-response" Version="2.0" IssueInstant="\(time(0))" Destination="\(acsURL)">\
            <saml:Issuer>\(issuer)</saml:Issuer><samlp:Extensions>\(extensions)</samlp:Extensions>\
            <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>\
            <saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="id-assertion" Version="2.0" IssueInstant="\(time(0))">\
            <saml:Issuer>\(issuer)</saml:Issuer><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">member@acme.test</saml:NameID>\
            <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="\(time(300))" Recipient="\(acsURL)"/></saml:SubjectConfirmation></saml:Subject>\
            <saml:Conditions NotBefore="\(time(-60))" NotOnOrAfter="\(time(300))"><saml:AudienceRestriction><saml:Audience>\(entityID)</saml:Audience></saml:AudienceRestriction></saml:Conditions>\
            <saml:AuthnStatement AuthnInstant="\(time(0))" SessionIndex="id-assertion"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>\
            <saml:AttributeStatement><saml:Attribute Name="groups">\(values)</saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>
            """
        }

        /// Both signed, the way Okta signs: the Assertion with `xs` inclusive, then the Response.
        func signed(_ signer: SignatureSigner, prefixes: [String] = []) throws -> [UInt8] {
            let inner = try signer.sign(Array(xml.utf8), elementID: "id-assertion", inclusivePrefixes: ["xs"])
            return try signer.sign(inner, elementID: "id-response", inclusivePrefixes: prefixes)
        }

        /// A Response Signature written by hand, as an attacker with no trusted key writes
        /// it: well-formed, any values, whatever SignedInfo shape the attack needs.
        func forged(signedInfoPrefixes: [String] = [], references: Int = 1, transforms: Int = 2,
                    signatureValue: String = String(repeating: "QUFB", count: 86)) -> [UInt8] {
            let dsig = "http://www.w3.org/2000/09/xmldsig#"
            let c14n = "http://www.w3.org/2001/10/xml-exc-c14n#"
            let list = signedInfoPrefixes.isEmpty ? ""
                : "<ec:InclusiveNamespaces xmlns:ec=\"\(c14n)\" PrefixList=\"\(signedInfoPrefixes.joined(separator: " "))\"/>"
            let transformList = "<ds:Transform Algorithm=\"\(dsig)enveloped-signature\"/>"
                + String(repeating: "<ds:Transform Algorithm=\"\(c14n)\"/>", count: max(0, transforms - 1))
            let reference = """
            <ds:Reference URI="#id-response"><ds:Transforms>\(transformList)</ds:Transforms>\
            <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</ds:DigestValue></ds:Reference>
            """
            let signature = """
            <ds:Signature xmlns:ds="\(dsig)"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="\(c14n)">\(list)</ds:CanonicalizationMethod>\
            <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>\(String(repeating: reference, count: references))</ds:SignedInfo>\
            <ds:SignatureValue>\(signatureValue)</ds:SignatureValue></ds:Signature>
            """
            let text = xml.replacingOccurrences(of: "<saml:Issuer>\(issuer)</saml:Issuer><samlp:Extensions>",
                                                with: "<saml:Issuer>\(issuer)</saml:Issuer>\(signature)<samlp:Extensions>")
            return Array(text.utf8)
        }
    }
}
