<?php
// The gateway's SPs: one per organization on each gateway, plain http (@GW@) and
// https + HTTP/2 (@GWS@); run-e2e.sh checks these against the gateways' own metadata.
foreach (['@GW@', '@GWS@'] as $gw) {
    foreach (['acme', 'globex'] as $org) {
        $metadata["$gw/organizations/$org/saml/metadata"] = [
            'AssertionConsumerService' => "$gw/organizations/$org/saml/consume",
            'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
            'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
        ];
    }
}
