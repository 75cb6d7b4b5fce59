<?php
// SimpleSAMLphp as a throwaway IdP for the end-to-end test (run-e2e.sh fills @IDP@, @DIR@).
$config = [
    'baseurlpath' => '@IDP@/',
    'certdir' => '@DIR@/cert/',
    'loggingdir' => '@DIR@/log/',
    'datadir' => '@DIR@/data/',
    'tempdir' => '@DIR@/tmp',
    'metadatadir' => '@DIR@/metadata/',
    'technicalcontact_name' => 'ssogate e2e',
    'technicalcontact_email' => 'e2e@example.test',
    'secretsalt' => 'ssogate-e2e-salt-0123456789abcdef',
    'auth.adminpassword' => 'ssogate-e2e-admin',
    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,
    'timezone' => 'UTC',
    'logging.level' => SimpleSAML\Logger::DEBUG,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'enable.saml20-idp' => true,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true],
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => '@DIR@/sessions',
    'session.cookie.secure' => false,
    'language.default' => 'en',
    // initSLO.php's RelayState may lead back to the gateways (any loopback port).
    'trusted.url.domains' => ['127\\.0\\.0\\.1(:[0-9]+)?', 'localhost(:[0-9]+)?'],
    'trusted.url.regex' => true,
];
