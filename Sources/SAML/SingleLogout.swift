import Compression
import CryptoCore
import Foundation
import XMLCore
import XMLDSig

/// A LogoutRequest an IdP sent, as its checks left it (docs/CONTRACT.md "Sessions, logout and
/// Single Logout"): whose sessions it ends.
public struct LogoutRequestMessage: Sendable, Equatable {
    public let id: String
    public let issuer: String
    public let nameID: String
    /// Empty: every session of the NameID.
    public let sessionIndexes: [String]
}

/// A LogoutResponse an IdP sent back to the gateway's LogoutRequest.
public struct LogoutResponseMessage: Sendable, Equatable {
    public let issuer: String
    public let inResponseTo: String
    /// The top-level StatusCode.
    public let status: String
    public var succeeded: Bool { status == SAMLNS.success }
}

/// A SAML message as it reached `/organizations/{org}/saml/slo`.
public enum ReceivedSAMLMessage: Sendable {
    /// HTTP-Redirect: the query string exactly as received (its signature covers the
    /// percent-encoded values, not decoded ones).
    case redirect(query: String)
    /// HTTP-POST: the form's fields.
    case post(form: [String: String])
}

/// Single Logout (SAML 2.0 profiles §4.4, bindings §3.4 and §3.5): what the gateway sends,
/// and the checks of what it receives. An IdP's LogoutRequest is held to the same rules as
/// an assertion: signed by a configured key (over the query for HTTP-Redirect, enveloped
/// for HTTP-POST, and only what was signed is read), Issuer, Destination, time, and its ID
/// spent once. Unsigned, foreign, stale or replayed requests end nothing.
public struct SingleLogout: Sendable {
    public static let redirectBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
    public static let postBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    public static let success = SAMLNS.success
    /// The SP could not do what was asked (here: the state store did not take the ending).
    public static let responder = "urn:oasis:names:tc:SAML:2.0:status:Responder"
    /// A logout message is small: at most this much, encoded or inflated.
    static let maxBytes = 64 * 1024
    /// A LogoutRequest issued longer ago than this (plus the clock skew) is stale.
    static let freshness: TimeInterval = 300

    public let settings: ServiceProviderSettings
    /// `{public_url}/organizations/{org}/saml/slo`: the Destination received messages must name.
    public let sloURL: String
    public let clock: @Sendable () -> Date

    public init(settings: ServiceProviderSettings, sloURL: String, clock: @escaping @Sendable () -> Date) {
        self.settings = settings
        self.sloURL = sloURL
        self.clock = clock
    }

    // MARK: - Received

    /// An IdP's LogoutRequest, checked; and the ID to spend (replay) before acting on it.
    public func request(_ message: ReceivedSAMLMessage) throws(SAMLError) -> (LogoutRequestMessage, ReplaySpend) {
        let root = try verified(message, parameter: "SAMLRequest", rootName: "LogoutRequest")
        let issuer = try checkIssuerAndDestination(root)
        guard let id = root.attribute("ID"), !id.isEmpty else { throw SAMLError("malformed", "LogoutRequest has no ID") }
        let now = clock()
        guard let issued = root.attribute("IssueInstant").flatMap(SAMLTime.parse) else {
            throw SAMLError("malformed", "LogoutRequest has no valid IssueInstant")
        }
        if issued.timeIntervalSince(now) > settings.clockSkew { throw SAMLError("not_yet_valid", "LogoutRequest issued in the future") }
        if now.timeIntervalSince(issued) > Self.freshness + settings.clockSkew {
            throw SAMLError("expired", "LogoutRequest issued \(Int(now.timeIntervalSince(issued))) s ago")
        }
        if let end = root.attribute("NotOnOrAfter").flatMap(SAMLTime.parse), now.addingTimeInterval(-settings.clockSkew) >= end {
            throw SAMLError("expired", "LogoutRequest NotOnOrAfter has passed")
        }
        let names = root.children(named: "NameID", in: SAMLNS.assertion)
        guard names.count == 1 else {
            throw SAMLError("malformed", root.children(named: "EncryptedID", in: SAMLNS.assertion).isEmpty
                            ? "LogoutRequest must name exactly one NameID" : "an encrypted NameID in a LogoutRequest is not supported")
        }
        let nameID = names[0].textContent.trimmingSpaces()
        guard !nameID.isEmpty else { throw SAMLError("malformed", "LogoutRequest NameID is empty") }
        let indexes = root.children(named: "SessionIndex", in: SAMLNS.protocol_).map { $0.textContent.trimmingSpaces() }
        // Spent as long as it could be accepted.
        let spend = ReplaySpend(id: "logout:" + id, until: issued.addingTimeInterval(Self.freshness + 2 * settings.clockSkew),
                                refusal: SAMLError("logout_replayed", "LogoutRequest \(id) was used already"))
        return (LogoutRequestMessage(id: id, issuer: issuer, nameID: nameID, sessionIndexes: indexes), spend)
    }

    /// The IdP's answer to the gateway's LogoutRequest `expectedRequestID`.
    public func response(_ message: ReceivedSAMLMessage, expectedRequestID: String?) throws(SAMLError) -> LogoutResponseMessage {
        let root = try verified(message, parameter: "SAMLResponse", rootName: "LogoutResponse")
        let issuer = try checkIssuerAndDestination(root)
        let inResponseTo = root.attribute("InResponseTo") ?? ""
        guard let expectedRequestID, inResponseTo == expectedRequestID else {
            throw SAMLError("in_response_to_unknown", "LogoutResponse answers \(inResponseTo.isEmpty ? "nothing" : inResponseTo), not this browser's logout")
        }
        let status = root.children(named: "Status", in: SAMLNS.protocol_).first?
            .children(named: "StatusCode", in: SAMLNS.protocol_).first?.attribute("Value") ?? ""
        return LogoutResponseMessage(issuer: issuer, inResponseTo: inResponseTo, status: status)
    }

    /// The message's root element, from exactly what a configured key signed.
    private func verified(_ message: ReceivedSAMLMessage, parameter: String, rootName: String) throws(SAMLError) -> XMLElement {
        switch message {
        case .redirect(let query):
            let fields = try Self.rawFields(query)
            guard let encoded = fields[parameter] else { throw SAMLError("malformed", "no \(parameter) in the query") }
            guard let sigAlg = fields["SigAlg"], let signature = fields["Signature"] else {
                throw SAMLError("signature_missing", "the \(parameter) is not signed (SigAlg and Signature)")
            }
            // Bindings §3.4.4.1: the signed octets are the query's own encoded values, in this order.
            var signed = "\(parameter)=\(encoded)"
            if let relay = fields["RelayState"] { signed += "&RelayState=\(relay)" }
            signed += "&SigAlg=\(sigAlg)"
            guard let algorithm = SignatureMethod.algorithm(uri: Self.percentDecode(sigAlg) ?? ""),
                  algorithm != .insecureRSASHA1 || settings.allowInsecureSHA1 else {
                throw SAMLError("algorithm_not_allowed", "SigAlg \(Self.percentDecode(sigAlg) ?? sigAlg)")
            }
            guard let signatureBytes = Self.percentDecode(signature).flatMap({ Base64.decode($0) }),
                  settings.trusted.contains(where: { $0.key.verify(signature: signatureBytes, of: Array(signed.utf8), algorithm: algorithm) }) else {
                throw SAMLError("signature_invalid", "the query signature does not verify with a configured certificate")
            }
            guard let base64 = Self.percentDecode(encoded), base64.utf8.count <= Self.maxBytes, let deflated = Base64.decode(base64) else {
                throw SAMLError("malformed", "\(parameter) is not base64")
            }
            let xml: [UInt8]
            do { xml = try RawDeflate.inflate(deflated, limit: Self.maxBytes) } catch { throw SAMLError("malformed", "\(parameter) does not inflate") }
            return try Self.root(xml, named: rootName)
        case .post(let form):
            guard let encoded = form[parameter] else { throw SAMLError("malformed", "no \(parameter) in the form") }
            guard encoded.utf8.count <= Self.maxBytes, let xml = Base64.decode(encoded, skippingXMLWhitespace: true) else {
                throw SAMLError("malformed", "\(parameter) is not base64")
            }
            let root = try Self.root(xml, named: rootName)
            let verifier = SignatureVerifier(trusted: settings.trusted, allowInsecureSHA1: settings.allowInsecureSHA1)
            return try ResponseValidator.mapping { () throws(DSigError) in try verifier.verify(root) }.element
        }
    }

    private func checkIssuerAndDestination(_ root: XMLElement) throws(SAMLError) -> String {
        let issuer = root.children(named: "Issuer", in: SAMLNS.assertion).first?.textContent.trimmingSpaces() ?? ""
        if let expected = settings.idpEntityID, issuer != expected {
            throw SAMLError("issuer_mismatch", "Issuer \(issuer.isEmpty ? "absent" : issuer), expected \(expected)")
        }
        // A signed message must name where it was sent (bindings §3.4.5.2, §3.5.5.2).
        guard root.attribute("Destination") == sloURL else {
            throw SAMLError("destination_mismatch", "Destination \(root.attribute("Destination") ?? "absent"), expected \(sloURL)")
        }
        guard root.attribute("Version") == "2.0" else { throw SAMLError("malformed", "Version is not 2.0") }
        return issuer
    }

    static func root(_ xml: [UInt8], named name: String) throws(SAMLError) -> XMLElement {
        try ResponseValidator.protocolMessage(xml, named: name).root
    }

    /// `name=value` pairs of a query with the values as sent (still percent-encoded). A
    /// name given twice is refused: which one was signed would be ambiguous.
    static func rawFields(_ query: String) throws(SAMLError) -> [String: String] {
        var out: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard out[name] == nil else { throw SAMLError("malformed", "\(name) appears twice in the query") }
            out[name] = parts.count > 1 ? String(parts[1]) : ""
        }
        return out
    }

    static func percentDecode(_ text: String) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    // MARK: - Sent

    /// The gateway's LogoutRequest for one session, as an HTTP-Redirect URL signed with the
    /// SP key; and its ID, which the LogoutResponse must answer.
    public static func requestURL(to destination: String, issuer: String, nameID: String, nameIDFormat: String?, sessionIndex: String?,
                                  relayState: String?, key: PrivateKey, now: Date, random: () throws -> [UInt8]) throws -> (url: String, id: String) {
        let id = "id-" + (try random()).map { String(format: "%02x", $0) }.joined()
        let format = nameIDFormat.map { " Format=\"\(Markup.escape($0))\"" } ?? ""
        let xml = """
        <samlp:LogoutRequest xmlns:samlp="\(SAMLNS.protocol_)" xmlns:saml="\(SAMLNS.assertion)" ID="\(id)" Version="2.0" \
        IssueInstant="\(SAMLTime.format(now))" Destination="\(Markup.escape(destination))" \
        NotOnOrAfter="\(SAMLTime.format(now.addingTimeInterval(freshness)))"><saml:Issuer>\(Markup.escape(issuer))</saml:Issuer>\
        <saml:NameID\(format)>\(Markup.escape(nameID))</saml:NameID>\
        \(sessionIndex.map { "<samlp:SessionIndex>\(Markup.escape($0))</samlp:SessionIndex>" } ?? "")</samlp:LogoutRequest>
        """
        return (try signedRedirect(to: destination, parameter: "SAMLRequest", xml: xml, relayState: relayState, key: key), id)
    }

    /// The gateway's LogoutResponse to an IdP's LogoutRequest, as an HTTP-Redirect URL,
    /// signed when there is an SP key.
    public static func responseURL(to destination: String, issuer: String, inResponseTo: String, status: String = success,
                                   relayState: String?, key: PrivateKey?, now: Date, random: () throws -> [UInt8]) throws -> String {
        let id = "id-" + (try random()).map { String(format: "%02x", $0) }.joined()
        let xml = """
        <samlp:LogoutResponse xmlns:samlp="\(SAMLNS.protocol_)" xmlns:saml="\(SAMLNS.assertion)" ID="\(id)" Version="2.0" \
        IssueInstant="\(SAMLTime.format(now))" Destination="\(Markup.escape(destination))" InResponseTo="\(Markup.escape(inResponseTo))">\
        <saml:Issuer>\(Markup.escape(issuer))</saml:Issuer><samlp:Status><samlp:StatusCode Value="\(Markup.escape(status))"/></samlp:Status>\
        </samlp:LogoutResponse>
        """
        return try signedRedirect(to: destination, parameter: "SAMLResponse", xml: xml, relayState: relayState, key: key)
    }

    static func signedRedirect(to destination: String, parameter: String, xml: String, relayState: String?, key: PrivateKey?) throws -> String {
        var query = parameter + "=" + AuthnRequest.percentEncode(Data(AuthnRequest.rawDeflateStored(Array(xml.utf8))).base64EncodedString())
        if let relayState { query += "&RelayState=" + AuthnRequest.percentEncode(relayState) }
        if let key {
            let algorithm: SignatureAlgorithm = key.isRSA ? .rsaSHA256 : .ecdsaSHA256
            query += "&SigAlg=" + AuthnRequest.percentEncode(SignatureMethod.uri(of: algorithm))
            query += "&Signature=" + AuthnRequest.percentEncode(Data(try key.sign(Array(query.utf8), algorithm: algorithm)).base64EncodedString())
        }
        return destination + (destination.contains("?") ? "&" : "?") + query
    }
}
