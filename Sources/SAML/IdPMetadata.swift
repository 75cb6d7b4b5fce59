import CryptoCore
import Foundation
import XMLCore

/// What an IdP's metadata tells an SP: entity ID, the HTTP-Redirect SSO URL and every
/// signing certificate (several during a rollover). Read from Okta, Azure AD,
/// SimpleSAMLphp and OneLogin metadata alike; `ssogate import-idp-metadata` prints it as
/// configuration.
public struct IdPMetadata: Sendable {
    public let entityID: String
    public let redirectSSOURL: String?
    /// The IdP's SingleLogoutService for the HTTP-Redirect binding, when it publishes one.
    public let redirectSLOURL: String?
    public let signingCertificates: [X509Certificate]
    /// `validUntil` of the EntityDescriptor (or the EntitiesDescriptor around it): past it the
    /// metadata must not be used.
    public let validUntil: Date?
    /// `cacheDuration`: how long it may be kept before fetching it again.
    public let cacheDuration: TimeInterval?

    static let metadataNS = "urn:oasis:names:tc:SAML:2.0:metadata"
    static let dsigNS = "http://www.w3.org/2000/09/xmldsig#"
    static let redirectBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"

    public static func parse(_ xml: [UInt8]) throws(SAMLError) -> IdPMetadata {
        let document: XMLDocument
        do { document = try XMLDocument.parse(xml, limits: .metadata) } catch { throw SAMLError("malformed", "metadata: \(error.reason)") }
        var root = document.root
        var validUntil = root.attribute("validUntil").flatMap(SAMLTime.parse)
        var cacheDuration = root.attribute("cacheDuration").flatMap(Self.duration)
        if root.isNamed("EntitiesDescriptor", in: metadataNS) {
            guard let first = root.children(named: "EntityDescriptor", in: metadataNS).first else {
                throw SAMLError("malformed", "metadata holds no EntityDescriptor")
            }
            root = first
            // The stricter of the two levels counts.
            if let inner = root.attribute("validUntil").flatMap(SAMLTime.parse) { validUntil = min(validUntil ?? inner, inner) }
            if let inner = root.attribute("cacheDuration").flatMap(Self.duration) { cacheDuration = min(cacheDuration ?? inner, inner) }
        }
        guard root.isNamed("EntityDescriptor", in: metadataNS), let entityID = root.attribute("entityID") else {
            throw SAMLError("malformed", "metadata root is not an EntityDescriptor with an entityID")
        }
        guard let idp = root.children(named: "IDPSSODescriptor", in: metadataNS).first else {
            throw SAMLError("malformed", "metadata has no IDPSSODescriptor")
        }
        let sso = idp.children(named: "SingleSignOnService", in: metadataNS)
            .first { $0.attribute("Binding") == redirectBinding }?.attribute("Location")
        let slo = idp.children(named: "SingleLogoutService", in: metadataNS)
            .first { $0.attribute("Binding") == redirectBinding }?.attribute("Location")
        var certificates: [X509Certificate] = []
        for descriptor in idp.children(named: "KeyDescriptor", in: metadataNS) {
            // `use` absent means both signing and encryption.
            guard descriptor.attribute("use") ?? "signing" == "signing" else { continue }
            for keyInfo in descriptor.children(named: "KeyInfo", in: dsigNS) {
                for data in keyInfo.children(named: "X509Data", in: dsigNS) {
                    for cert in data.children(named: "X509Certificate", in: dsigNS) {
                        certificates.append(try certificate(fromBase64: cert.textContent))
                    }
                }
            }
        }
        guard !certificates.isEmpty else { throw SAMLError("malformed", "metadata has no signing certificate") }
        return IdPMetadata(entityID: entityID, redirectSSOURL: sso, redirectSLOURL: slo, signingCertificates: certificates,
                           validUntil: validUntil, cacheDuration: cacheDuration)
    }

    /// An xs:duration without years or months (`PT1H`, `P1D`, `PT5M30S`, `P1DT2H`), in
    /// seconds; nil for anything else.
    static func duration(_ text: String) -> TimeInterval? {
        guard text.hasPrefix("P"), text.count > 1 else { return nil }
        var total: Double = 0
        var number = ""
        var inTime = false
        for character in text.dropFirst() {
            switch character {
            case "T": inTime = true
            case "0"..."9", ".": number.append(character)
            case "D", "H", "M", "S":
                guard let value = Double(number) else { return nil }
                number = ""
                switch (character, inTime) {
                case ("D", false): total += value * 86_400
                case ("H", true): total += value * 3600
                case ("M", true): total += value * 60
                case ("S", true): total += value
                default: return nil  // months and years have no fixed length
                }
            default: return nil
            }
        }
        return number.isEmpty ? total : nil
    }

    /// A certificate from the base64 DER that XML carries, as PEM for OpenSSL.
    public static func certificate(fromBase64 text: String) throws(SAMLError) -> X509Certificate {
        let compact = String(decoding: text.utf8.filter { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }, as: UTF8.self)
        guard let der = Data(base64Encoded: compact) else { throw SAMLError("malformed", "certificate is not base64") }
        let pem = "-----BEGIN CERTIFICATE-----\n" + der.base64EncodedString(options: .lineLength64Characters) + "\n-----END CERTIFICATE-----\n"
        do {
            guard let parsed = try X509Certificate.parseAll(pem: pem).first else { throw SAMLError("malformed", "empty certificate") }
            return parsed
        } catch let error as SAMLError {
            throw error
        } catch {
            throw SAMLError("malformed", "certificate does not parse")
        }
    }
}
