/// What a failed login's reason code usually means and what to try, in an org admin's
/// words: the README's troubleshooting table, shown on the test result page and in the
/// console beside a failed test.
package enum LoginAdvice {
    package struct Advice: Sendable, Equatable {
        package let cause: String
        package let fix: String
    }

    package static func advice(for code: String) -> Advice? {
        switch code {
        case "login_state_missing":
            return .init(cause: "The short-lived login cookie did not come back with the IdP's answer: the login took longer than 10 minutes, was started in another browser, or a proxy in front rewrites cookies.",
                         fix: "Start the test again from this browser. Serve the gateway over https, and do not let a front proxy change SameSite=None; Secure cookies.")
        case "in_response_to_unknown":
            return .init(cause: "The IdP answered another login than the one this browser started (two tabs, or the back button).", fix: "Start the test again.")
        case "unsolicited_not_allowed":
            return .init(cause: "The login came from the IdP's tile (IdP-initiated) while that is not allowed.",
                         fix: "Tick \"Allow logins started from the IdP\", or have the tile open this organization's /sso address.")
        case "audience_mismatch":
            return .init(cause: "The IdP's Audience URI (SP Entity ID) is not this organization's SP entity ID.",
                         fix: "In Okta, set Audience URI to the SP entity ID shown above, exactly (http or https, no trailing slash).")
        case "destination_mismatch", "recipient_mismatch":
            return .init(cause: "The IdP's Single sign-on URL is not this organization's ACS URL.",
                         fix: "In Okta, set Single sign-on URL (and Recipient) to the ACS URL shown above.")
        case "issuer_mismatch":
            return .init(cause: "The IdP entity ID entered here is not the issuer the IdP puts in its answers.",
                         fix: "Copy Okta's \"Identity Provider Issuer\" (http://www.okta.com/exk...) again into IdP entity ID.")
        case "signature_invalid", "digest_mismatch":
            return .init(cause: "The answer is not signed by the certificate entered here: the IdP rolled its certificate over, or this certificate belongs to another app.",
                         fix: "Paste the app's current X.509 certificate from Okta's \"View SAML setup instructions\" (during a rollover, both).")
        case "signature_missing":
            return .init(cause: "Neither the answer nor its assertion is signed.", fix: "In Okta, keep Assertion Signature set to Signed.")
        case "algorithm_not_allowed":
            return .init(cause: "The IdP signs with RSA-SHA1 or digests with SHA-1.", fix: "In Okta, set Signature Algorithm to RSA-SHA256.")
        case "expired", "not_yet_valid", "subject_confirmation_expired":
            return .init(cause: "The IdP's clock and this gateway's disagree by more than the allowed skew, or the answer was held too long.",
                         fix: "Ask the operator to check the gateway host's clock (NTP), then test again.")
        case "assertion_replayed":
            return .init(cause: "The same answer was posted twice (a reload or the back button).", fix: "Start the test again.")
        case "status_not_success":
            return .init(cause: "The IdP refused the user: not assigned to the app, or MFA failed.", fix: "Assign the user (or their group) to the app in Okta.")
        case "encrypted_assertion_unsupported", "decryption_failed", "key_transport_refused", "assertion_not_encrypted":
            return .init(cause: "The IdP's assertion encryption does not match this organization's SP key pair.",
                         fix: "Turn Assertion Encryption off in Okta, or ask the operator for the SP certificate to give Okta (RSA-OAEP key transport).")
        case "state_store_unavailable":
            return .init(cause: "The gateway could not record the login in its state store.", fix: "Ask the operator: the store is down or slow. Logins recover by themselves.")
        case "invalid_identity_value":
            return .init(cause: "The NameID, email or a group holds a control character (a tab, a line break).",
                         fix: "Fix the attribute at the IdP (Okta: the profile field mapped to it).")
        case "session_too_large":
            return .init(cause: "The user's NameID, email or role is too large for a cookie.", fix: "Send a shorter NameID (Okta: Application username = Email).")
        case "access_denied":
            return .init(cause: "The access policy gives no access to members none of whose groups has a role row (default role: none).",
                         fix: "Add a role row for one of the member's groups, or put the member in a group that has one.")
        case "email_domain_not_allowed":
            return .init(cause: "The member's email is not in the organization's allowed email domains (or the IdP sent no email).",
                         fix: "Add the domain under \"Who gets in\", or have the IdP send the member's address in that domain (an email attribute or an email NameID).")
        case "login_busy", "login_rate_limited":
            return .init(cause: "Too many logins at once.", fix: "Wait a few seconds and test again.")
        default:
            return nil
        }
    }
}
