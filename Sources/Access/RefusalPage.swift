import Config
import Foundation
import XMLCore

/// What a member refused by their organization's access policy is told (docs/CONTRACT.md
/// "Access policy"): who they are logged in as, what the organization requires, and whom to
/// ask; as a page for a browser, as JSON for anything else. The same words reach the audit
/// log as the reason code.
package struct AccessRefusal: Sendable {
    package let organization: String
    package let refusal: AccessRules.Refusal
    /// Who asked: the NameID and email the IdP asserted.
    package let subject: String
    package let email: String?
    /// The organization whose IdP vouched for them (another one for an outsider).
    package let vouchedBy: String
    /// The role they hold, when the refusal is about what the role allows.
    package let role: String?
    /// The resource group of the path, when the refusal is about one.
    package let resourceGroup: String?
    package let method: String
    /// Their session (or `token:ID`; `noSession` for a refused login), for the audit log.
    package let session: String

    package static let noSession = "-"

    /// What the organization requires, in a member's words.
    func requirement(_ policy: AccessPolicy) -> String {
        switch refusal {
        case .emailDomainNotAllowed:
            let domains = policy.allowedEmailDomains
            return "\(organization) accepts accounts with an email address in "
                + (domains.count == 1 ? domains[0] : domains.dropLast().joined(separator: ", ") + " or " + domains.last!)
                + ", and yours is \(email ?? "not given by the identity provider")."
        case .accessDenied:
            return vouchedBy == organization
                ? "\(organization) lets in members whose groups at its identity provider give them a role, and none of yours does."
                : "You are signed in through \(vouchedBy), and \(organization) has not listed you as an external collaborator."
        case .readOnlyRole:
            return "Your role in \(organization) is \(role ?? "read"), which may view content but not change it (this was a \(method) request)."
        case .resourceGroupDenied:
            return "This content is in \(organization)'s resource group \"\(resourceGroup ?? "?")\", which only its own members may open, and you are not one of them."
        }
    }

    /// Whom to ask, and for what.
    func nextStep(_ policy: AccessPolicy) -> String {
        let whom = policy.contact.map { "\(organization)'s administrators (\($0))" } ?? "\(organization)'s administrators"
        switch refusal {
        case .emailDomainNotAllowed:
            return "Sign in with your \(organization) account instead, or ask \(whom) to allow your domain."
        case .accessDenied:
            return vouchedBy == organization ? "Ask \(whom) to add you to a group that has access."
                : "Ask \(whom) to add \(email ?? subject) as an external collaborator, or sign in with a \(organization) account."
        case .readOnlyRole:
            return "Ask \(whom) for the write role if you need to make changes."
        case .resourceGroupDenied:
            return "Ask \(whom) to add you to the resource group \"\(resourceGroup ?? "?")\"."
        }
    }

    package func html(_ policy: AccessPolicy, requestID: String, signIn: String) -> String {
        let who = email.map { $0 == subject ? Markup.escape($0) : "\(Markup.escape(subject)) (\(Markup.escape($0)))" } ?? Markup.escape(subject)
        let title = refusal == .readOnlyRole ? "You can view this, but not change it" : "You don't have access to this"
        // A refused login has no session here to log out of.
        let logout = session == Self.noSession ? "" : "<a href=\"/_ssogate/logout\">Log out</a>"
        let signInAgain = refusal == .emailDomainNotAllowed || (refusal == .accessDenied && vouchedBy != organization)
            ? "<a id=\"ssogate-sign-in\" href=\"\(Markup.escape(signIn))\">Sign in to \(Markup.escape(organization)) with another account</a>" : ""
        let another = "<p>" + [signInAgain, logout].filter { !$0.isEmpty }.joined(separator: " &middot; ") + "</p>"
        return LogoutPage.frame(title, """
        <h1 id="ssogate-refused">\(Markup.escape(title))</h1>
        <p>You are signed in as <b>\(who)</b>\(vouchedBy == organization ? "" : " through \(Markup.escape(vouchedBy))").</p>
        <p>\(Markup.escape(requirement(policy)))</p><p><b>What to do:</b> \(Markup.escape(nextStep(policy)))</p>
        \(another)<p class=hint>Reason: <code id="ssogate-reason">\(refusal.rawValue)</code> &middot; request id <code>\(Markup.escape(requestID))</code></p>
        """)
    }

    package func json(_ policy: AccessPolicy, requestID: String) -> [UInt8] {
        var object: [String: String] = ["error": refusal.rawValue, "organization": organization, "subject": subject,
                                        "message": requirement(policy) + " " + nextStep(policy), "request_id": requestID]
        if let group = resourceGroup { object["resource_group"] = group }
        if let role { object["role"] = role }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{\"error\":\"\(refusal.rawValue)\"}".utf8)
        return Array(data)
    }
}
