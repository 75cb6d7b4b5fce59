<?php
foreach (['acme', 'globex'] as $org) {
    $metadata["@GW@/organizations/$org/saml/metadata"] = [
        'AssertionConsumerService' => "@GW@/organizations/$org/saml/consume",
        'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
        'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
    ];
}
