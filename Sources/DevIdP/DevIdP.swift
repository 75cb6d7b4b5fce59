import Compression
import CryptoCore
import Foundation
import SAML
import XMLCore
import XMLDSig

/// A demo user of the development IdP.
public struct DevUser: Sendable {
    public let id: String
    public let email: String
    public let groups: [String]
    public let description: String

    public static let defaults = [
        DevUser(id: "alice", email: "alice@example.test", groups: ["hf-admins", "engineering"], description: "admin of acme"),
        DevUser(id: "bob", email: "bob@example.test", groups: ["viewers"], description: "read-only member"),
        DevUser(id: "carol", email: "carol@example.test", groups: ["engineering"], description: "engineer"),
        DevUser(id: "mallory", email: "mallory@elsewhere.test", groups: ["engineering"], description: "outside acme's email domain"),
    ]
}

/// A service provider the development IdP answers: where its responses may go.
public struct DevServiceProvider: Sendable {
    public let entityID: String
    public let acsURL: String
    /// Where an IdP-initiated login (the tile) lands.
    public let landing: String

    public init(entityID: String, acsURL: String, landing: String) {
        self.entityID = entityID
        self.acsURL = acsURL
        self.landing = landing
    }
}

extension DevServiceProvider {
    /// Reads an SP's metadata (as `ssogate metadata` prints it): its entity ID and the
    /// HTTP-POST AssertionConsumerService, the only place responses will be sent.
    public static func fromMetadata(_ xml: [UInt8], landing: String = "/") throws -> DevServiceProvider {
        let md = "urn:oasis:names:tc:SAML:2.0:metadata"
        let root = try XMLDocument.parse(xml).root
        guard root.localName == "EntityDescriptor", root.namespaceURI == md, let entityID = root.attribute("entityID") else {
            throw DevIdPError(description: "not SAML metadata: the root is not an md:EntityDescriptor with an entityID")
        }
        let acs = root.children(named: "SPSSODescriptor", in: md).flatMap { $0.children(named: "AssertionConsumerService", in: md) }
            .first { $0.attribute("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" }
        guard let location = acs?.attribute("Location") else {
            throw DevIdPError(description: "the metadata lists no HTTP-POST AssertionConsumerService")
        }
        return DevServiceProvider(entityID: entityID, acsURL: location, landing: landing)
    }
}

public struct DevIdPError: Error, CustomStringConvertible {
    public let description: String

    public init(description: String) { self.description = description }
}

/// The development IdP: a fresh key pair, a login page that lists demo users, and
/// Okta-shaped responses (Response and Assertion both signed). For demos and integration
/// work on loopback only; it answers only the service providers it was given.
public final class DevIdP: Sendable {
    public struct Reply: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String

        public init(status: Int, contentType: String, body: String) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    public let identity: SelfSignedIdentity
    public let baseURL: String
    public let users: [DevUser]
    public let serviceProviders: [DevServiceProvider]
    private let clock: @Sendable () -> Date

    public var entityID: String { baseURL + "/metadata" }
    public var ssoURL: String { baseURL + "/sso" }

    public init(baseURL: String, serviceProviders: [DevServiceProvider], users: [DevUser] = DevUser.defaults,
                clock: @escaping @Sendable () -> Date = { Date() }) throws {
        XMLLibrary.initialize()
        self.identity = try SelfSignedIdentity.generate(commonName: "ssogate-dev-idp")
        self.baseURL = baseURL
        self.serviceProviders = serviceProviders
        self.users = users
        self.clock = clock
    }

    /// Routes one request: `GET /sso`, `POST /login`, `GET /` (tiles), `GET /metadata`.
    public func handle(method: String, path: String, query: [String: String], form: [String: String]) -> Reply {
        switch (method, path) {
        case ("GET", "/sso"): return loginPage(query)
        case ("POST", "/login"): return login(form)
        case ("GET", "/"): return tiles()
        case ("GET", "/metadata"): return Reply(status: 200, contentType: "application/samlmetadata+xml", body: metadata())
        default: return Reply(status: 404, contentType: "text/plain; charset=utf-8", body: "not found\n")
        }
    }

    private func loginPage(_ query: [String: String]) -> Reply {
        guard let encoded = query["SAMLRequest"], let deflated = Data(base64Encoded: encoded),
              let inflated = try? RawDeflate.inflate(Array(deflated)), let request = try? XMLDocument.parse(inflated).root,
              request.localName == "AuthnRequest", let id = request.attribute("ID"),
              let issuer = request.children(named: "Issuer", in: "urn:oasis:names:tc:SAML:2.0:assertion").first?.textContent,
              let sp = serviceProviders.first(where: { $0.entityID == issuer }) else {
            return Reply(status: 400, contentType: "text/plain; charset=utf-8", body: "not an AuthnRequest from a known service provider\n")
        }
        if let acs = request.attribute("AssertionConsumerServiceURL"), acs != sp.acsURL {
            return Reply(status: 400, contentType: "text/plain; charset=utf-8", body: "unknown AssertionConsumerServiceURL\n")
        }
        let relay = query["RelayState"] ?? ""
        let buttons = users.map { user in
            """
            <form method="post" action="/login"><input type="hidden" name="user" value="\(Markup.escape(user.id))">\
            <input type="hidden" name="sp" value="\(Markup.escape(sp.entityID))"><input type="hidden" name="request" value="\(Markup.escape(id))">\
            <input type="hidden" name="relay" value="\(Markup.escape(relay))">\
            <button type="submit" id="login-\(Markup.escape(user.id))">Sign in as \(Markup.escape(user.email))</button> <span>\(Markup.escape(user.description))</span></form>
            """
        }.joined(separator: "\n")
        return page("Development IdP: sign in", "<h1>Development IdP</h1><p>Signing in to <code>\(Markup.escape(sp.entityID))</code>. Pick a demo user:</p>\(buttons)")
    }

    private func tiles() -> Reply {
        var body = "<h1>Development IdP</h1><p>Applications (IdP-initiated login, like an Okta tile):</p>"
        for sp in serviceProviders {
            for user in users {
                body += """
                <form method="post" action="/login"><input type="hidden" name="user" value="\(Markup.escape(user.id))">\
                <input type="hidden" name="sp" value="\(Markup.escape(sp.entityID))"><input type="hidden" name="relay" value="\(Markup.escape(sp.landing))">\
                <button type="submit" id="tile-\(Markup.escape(user.id))">Open \(Markup.escape(sp.landing)) as \(Markup.escape(user.email))</button></form>
                """
            }
        }
        return page("Development IdP", body)
    }

    private func login(_ form: [String: String]) -> Reply {
        guard let user = users.first(where: { $0.id == form["user"] }),
              let sp = serviceProviders.first(where: { $0.entityID == form["sp"] }) else {
            return Reply(status: 400, contentType: "text/plain; charset=utf-8", body: "unknown user or service provider\n")
        }
        let request = form["request"].flatMap { $0.isEmpty ? nil : $0 }
        guard let response = try? signedResponse(for: user, sp: sp, inResponseTo: request) else {
            return Reply(status: 500, contentType: "text/plain; charset=utf-8", body: "signing failed\n")
        }
        let relay = form["relay"].flatMap { $0.isEmpty ? nil : $0 }
        // The HTTP-POST binding: a form the browser submits to the ACS (with a button for
        // browsers without JavaScript).
        let body = """
        <form method="post" action="\(Markup.escape(sp.acsURL))" id="saml-post">
        <input type="hidden" name="SAMLResponse" value="\(Markup.escape(response))">\(relay.map { "<input type=\"hidden\" name=\"RelayState\" value=\"\(Markup.escape($0))\">" } ?? "")
        <button type="submit">Continue</button></form><script>document.getElementById('saml-post').submit()</script>
        """
        return page("Signing in", body)
    }

    /// An Okta-shaped response for `user`, Response and Assertion both signed.
    public func signedResponse(for user: DevUser, sp: DevServiceProvider, inResponseTo: String?) throws -> String {
        let now = clock()
        func time(_ offset: TimeInterval) -> String { SAMLTime.format(now.addingTimeInterval(offset)) }
        let rid = "id-" + (try SecureRandom().bytes(16)).map { String(format: "%02x", $0) }.joined()
        let aid = "id-" + (try SecureRandom().bytes(16)).map { String(format: "%02x", $0) }.joined()
        let irt = inResponseTo.map { " InResponseTo=\"\(Markup.escape($0))\"" } ?? ""
        let groups = user.groups.map { "<saml:AttributeValue xsi:type=\"xs:string\">\(Markup.escape($0))</saml:AttributeValue>" }.joined()
        let xml = """
        <samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="\(rid)" Version="2.0" IssueInstant="\(time(0))" Destination="\(Markup.escape(sp.acsURL))"\(irt)>\
        <saml:Issuer>\(Markup.escape(entityID))</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>\
        <saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="\(aid)" Version="2.0" IssueInstant="\(time(0))">\
        <saml:Issuer>\(Markup.escape(entityID))</saml:Issuer><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">\(Markup.escape(user.email))</saml:NameID>\
        <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="\(time(300))" Recipient="\(Markup.escape(sp.acsURL))"\(irt)/></saml:SubjectConfirmation></saml:Subject>\
        <saml:Conditions NotBefore="\(time(-60))" NotOnOrAfter="\(time(300))"><saml:AudienceRestriction><saml:Audience>\(Markup.escape(sp.entityID))</saml:Audience></saml:AudienceRestriction></saml:Conditions>\
        <saml:AuthnStatement AuthnInstant="\(time(0))" SessionIndex="\(aid)"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>\
        <saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue xsi:type="xs:string">\(Markup.escape(user.email))</saml:AttributeValue></saml:Attribute>\
        <saml:Attribute Name="groups">\(groups)</saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>
        """
        let signer = SignatureSigner(key: identity.key, certificate: identity.certificate)
        var bytes = try signer.sign(Array(xml.utf8), elementID: aid, inclusivePrefixes: ["xs"])
        bytes = try signer.sign(bytes, elementID: rid)
        return Data(bytes).base64EncodedString()
    }

    public func metadata() -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="\(Markup.escape(entityID))">
          <md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
            <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>\(Data(identity.certificate.der).base64EncodedString())</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
            <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
            <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="\(Markup.escape(ssoURL))"/>
          </md:IDPSSODescriptor>
        </md:EntityDescriptor>

        """
    }

    private func page(_ title: String, _ body: String) -> Reply {
        Reply(status: 200, contentType: "text/html; charset=utf-8", body: """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(Markup.escape(title))</title>
        <style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:46rem}form{margin:.6rem 0}button{padding:.4rem .8rem}</style>
        </head><body>\(body)</body></html>
        """)
    }
}
