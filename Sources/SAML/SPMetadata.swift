import CryptoCore
import Foundation
import XMLCore

/// The SP's metadata for one organization: what an admin gives the IdP (Okta's "Audience
/// URI" is the entity ID, its "Single sign on URL" the ACS).
public enum SPMetadata {
    /// An organization's metadata at the gateway's endpoints under `publicURL`: entity ID
    /// `…/saml/metadata`, ACS `…/saml/consume`, Single Logout `…/saml/slo`. The one place
    /// they are spelled for the metadata, whether the gateway serves it or the CLI prints it.
    public static func xml(publicURL: String, organization: String, certificate: X509Certificate?) -> String {
        let base = publicURL + "/organizations/" + organization + "/saml"
        return xml(entityID: base + "/metadata", acsURL: base + "/consume", sloURL: base + "/slo", certificate: certificate)
    }

    /// - Parameter certificate: the SP key pair's certificate, when configured: published
    ///   for signing (AuthnRequests are signed with its key) and for encryption, with the
    ///   encryption methods the gateway decrypts, strongest first.
    /// - Parameter sloURL: where IdPs send LogoutRequests and LogoutResponses (both bindings).
    public static func xml(entityID: String, acsURL: String, sloURL: String? = nil, certificate: X509Certificate?) -> String {
        var keys = ""
        if let certificate {
            let keyInfo = """
            <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>\
            <ds:X509Certificate>\(Data(certificate.der).base64EncodedString())</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
            """
            let methods = AssertionDecryptor.advertised.map { "\n      <md:EncryptionMethod Algorithm=\"\($0)\"/>" }.joined()
            keys = """

                <md:KeyDescriptor use="signing">\(keyInfo)</md:KeyDescriptor>
                <md:KeyDescriptor use="encryption">\(keyInfo)\(methods)
                </md:KeyDescriptor>
            """
        }
        return """
        <?xml version="1.0" encoding="UTF-8"?>
        <md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="\(Markup.escape(entityID))">
          <md:SPSSODescriptor AuthnRequestsSigned="\(certificate != nil)" WantAssertionsSigned="true" \
        protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\(keys)\(sloURL.map { url in
            ["HTTP-Redirect", "HTTP-POST"].map {
                "\n    <md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:\($0)\" Location=\"\(Markup.escape(url))\"/>"
            }.joined()
        } ?? "")
            <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
            <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" \
        Location="\(Markup.escape(acsURL))" index="0" isDefault="true"/>
          </md:SPSSODescriptor>
        </md:EntityDescriptor>

        """
    }
}
