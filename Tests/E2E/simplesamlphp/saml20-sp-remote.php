<?php
// The gateway's SPs: one per organization on each gateway, plain http (@GW@) and
// https + HTTP/2 (@GWS@); run-e2e.sh checks these against the gateways' own metadata.
foreach (['@GW@', '@GWS@'] as $gw) {
    foreach (['acme', 'globex', 'initech', 'hooli', 'umbrella'] as $org) {
        $metadata["$gw/organizations/$org/saml/metadata"] = [
            'AssertionConsumerService' => "$gw/organizations/$org/saml/consume",
            'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
            'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
            // Single Logout (HTTP-Redirect): the IdP signs what it sends there
            // (saml\Message::addRedirectSign reads sign.logout), as the gateway requires.
            'SingleLogoutService' => "$gw/organizations/$org/saml/slo",
            'sign.logout' => true,
        ];
    }
    // initech has an SP key pair (the certificate, from run-e2e.sh, is in certdir). With
    // `certificate` SimpleSAMLphp 1.19 uses it both ways (getPublicKeys: signing and
    // encryption):
    // - validate.authnrequest: the HTTP-Redirect signature (SigAlg, Signature) must verify
    //   against it (saml\Message::validateMessage, checkSign); unsigned or badly signed
    //   AuthnRequests are refused.
    // - assertion.encryption: the Assertion goes out as an EncryptedAssertion to it
    //   (saml\IdP\SAML2::encryptAssertion). The key transport is fixed there to RSA-OAEP
    //   (xmlenc#rsa-oaep-mgf1p) and the content to AES-128-CBC (saml2's
    //   EncryptedAssertion::setAssertion): 1.19 has no option to choose either for an
    //   SP's certificate (`sharedkey_algorithm` is for a `sharedkey` only, and
    //   `encryption.blacklisted-algorithms` for what it decrypts itself).
    $metadata["$gw/organizations/initech/saml/metadata"] += [
        'certificate' => 'sp-initech.crt',
        'validate.authnrequest' => true,
        'assertion.encryption' => true,
        // The gateway's LogoutRequests and LogoutResponses must verify against it too.
        'validate.logout' => true,
    ];
}
