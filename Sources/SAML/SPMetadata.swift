import CryptoCore
import Foundation
import XMLCore

/// The SP's metadata for one organization: what an admin gives the IdP (Okta's "Audience
/// URI" is the entity ID, its "Single sign on URL" the ACS).
public enum SPMetadata {
    public static func xml(entityID: String, acsURL: String, signingCertificate: X509Certificate?) -> String {
        let key = signingCertificate.map { cert in
            """
            <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>\
            <ds:X509Certificate>\(Data(cert.der).base64EncodedString())</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
            """
        } ?? ""
        return """
        <?xml version="1.0" encoding="UTF-8"?>
        <md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="\(Markup.escape(entityID))">
          <md:SPSSODescriptor AuthnRequestsSigned="\(signingCertificate != nil)" WantAssertionsSigned="true" \
        protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\(key.isEmpty ? "" : "\n    " + key)
            <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
            <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" \
        Location="\(Markup.escape(acsURL))" index="0" isDefault="true"/>
          </md:SPSSODescriptor>
        </md:EntityDescriptor>

        """
    }
}
