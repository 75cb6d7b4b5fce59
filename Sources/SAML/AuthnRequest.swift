import CryptoCore
import Foundation
import XMLCore

/// An SP-initiated login request for the HTTP-Redirect binding (SAML Bindings §3.4).
public struct AuthnRequest: Sendable {
    /// A valid xs:ID (starts with a letter), 160 random bits.
    public let id: String
    public let xml: String

    /// - Parameter random: the source of the ID's bytes (injected, docs/CODE-STYLE.md).
    public init(destination: String, acsURL: String, spEntityID: String, issueInstant: Date,
                random: () throws -> [UInt8]) rethrows {
        let bytes = try random()
        precondition(bytes.count >= 16, "an AuthnRequest ID needs at least 128 random bits")
        id = "id-" + bytes.map { String(format: "%02x", $0) }.joined()
        xml = """
        <samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" \
        ID="\(id)" Version="2.0" IssueInstant="\(SAMLTime.format(issueInstant))" Destination="\(Markup.escape(destination))" \
        AssertionConsumerServiceURL="\(Markup.escape(acsURL))" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">\
        <saml:Issuer>\(Markup.escape(spEntityID))</saml:Issuer>\
        <samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" AllowCreate="true"/>\
        </samlp:AuthnRequest>
        """
    }

    /// The URL the browser is sent to: `destination?SAMLRequest=…&RelayState=…`, and when a
    /// key is given `&SigAlg=…&Signature=…` signed over exactly that query (§3.4.4.1).
    public func redirectURL(to destination: String, relayState: String?, signingKey: PrivateKey? = nil) throws -> String {
        let deflated = Self.rawDeflateStored(Array(xml.utf8))
        var query = "SAMLRequest=" + Self.percentEncode(Data(deflated).base64EncodedString())
        if let relayState { query += "&RelayState=" + Self.percentEncode(relayState) }
        if let signingKey {
            let algorithm: SignatureAlgorithm = signingKey.isRSA ? .rsaSHA256 : .ecdsaSHA256
            let uri = algorithm == .rsaSHA256 ? "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
                : "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
            query += "&SigAlg=" + Self.percentEncode(uri)
            let signature = try signingKey.sign(Array(query.utf8), algorithm: algorithm)
            query += "&Signature=" + Self.percentEncode(Data(signature).base64EncodedString())
        }
        return destination + (destination.contains("?") ? "&" : "?") + query
    }

    /// Raw DEFLATE (RFC 1951) made of stored blocks: valid for every inflater, needs no
    /// compressor; an AuthnRequest is small enough that compression gains little.
    static func rawDeflateStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            let final = offset + length == data.count
            out.append(final ? 0x01 : 0x00)  // BFINAL, BTYPE=00 (stored), rest of the byte padding
            out += [UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8((~length >> 8) & 0xff)]
            out += data[offset..<offset + length]
            offset += length
        } while offset < data.count
        return out
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

}

extension SAMLTime {
    /// xs:dateTime in UTC, whole seconds (`2026-01-01T10:00:00Z`).
    public static func format(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec)
    }
}
