<?php
$config = [
    'admin' => ['core:AdminPassword'],
    // Users of the e2e IdP; the gateway maps the groups to roles.
    'example-userpass' => [
        'exampleauth:UserPass',
        'alice:alice-password' => ['email' => ['alice@example.test'], 'groups' => ['engineering', 'hf-admins']],
        // Outside umbrella's allowed email domain (Tests/E2E/policy_story.py).
        'mallory:mallory-password' => ['email' => ['mallory@elsewhere.test'], 'groups' => ['engineering']],
    ],
];
