import Foundation
import XMLCore

/// The pages of `/_ssogate/logout`: the confirmation with its button (a `GET` logs no one
/// out, so a link or an image on another site cannot), the refusal of a logout that came
/// from elsewhere, and the page after it.
package enum LogoutPage {
    static let style = """
    body{font-family:system-ui,-apple-system,sans-serif;margin:0;color:#1f2937;background:#f9fafb}
    main{max-width:34rem;margin:4rem auto;padding:1.5rem 2rem;background:#fff;border:1px solid #e5e7eb;border-radius:.6rem}
    h1{font-size:1.4rem;margin:.2rem 0 1rem}.hint{color:#6b7280;font-size:.9rem}label{display:block;margin:1rem 0}
    button{background:#111827;color:#fff;border:0;border-radius:.4rem;padding:.6rem 1.2rem;font:inherit;cursor:pointer}
    """

    static func frame(_ title: String, _ body: String) -> String {
        """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
        <title>\(Markup.escape(title))</title><style>\(style)</style></head><body><main>\(body)</main></body></html>
        """
    }

    /// "Log out?": who is signed in where, the button, and "everywhere".
    package static func confirm(signedIn: [(organization: String, subject: String)], csrf: String) -> String {
        guard !signedIn.isEmpty else {
            return frame("Logged out", "<h1 id=\"ssogate-logged-out\">You are not logged in</h1><p><a href=\"/\">Continue</a></p>")
        }
        let rows = signedIn.map { "<li><b>\(Markup.escape($0.subject))</b> in \(Markup.escape($0.organization))</li>" }.joined()
        return frame("Log out", """
        <h1>Log out?</h1><p>You are logged in as:</p><ul>\(rows)</ul>
        <form method="post" action="/_ssogate/logout"><input type="hidden" name="csrf" value="\(Markup.escape(csrf))">
        <label><input type="checkbox" name="everywhere" value="on" id="ssogate-everywhere"> Also log out on my other devices and browsers</label>
        <button type="submit" id="ssogate-logout">Log out</button></form>
        <p class=hint>Where your organization's IdP supports it, you are logged out there too.</p>
        """)
    }

    /// 403: a logout without proof that this site sent it.
    package static func refused() -> String {
        frame("Not logged out", """
        <h1>You were not logged out</h1><p>This logout did not come from this site's own logout button (another site may have sent it),
        so nothing was ended.</p><p>To log out, use <a href="/_ssogate/logout">the logout page</a>.</p>
        """)
    }

    /// How the IdP's part of a logout went.
    package enum IdPOutcome: Sendable {
        /// The IdP confirmed it ended its session too.
        case loggedOut
        /// The IdP answered with another status.
        case refused(String)
        /// The IdP's answer could not be trusted (reason code, detail).
        case unverified(String, String)
        /// The logout started at the IdP, which has no Single Logout URL to answer to.
        case startedThere
    }

    /// After a Single Logout: logged out here, and what the IdP said.
    package static func done(organization: String, idp: IdPOutcome) -> String {
        let org = Markup.escape(organization)
        let there: String
        switch idp {
        case .loggedOut:
            there = "<p id=\"ssogate-slo\" data-result=\"success\">Your organization's identity provider logged you out too.</p>"
        case .refused(let status):
            there = """
            <p id="ssogate-slo" data-result="idp_status_not_success">Your identity provider did not confirm that it logged you out
            (it answered <code>\(Markup.escape(status))</code>): close the browser, or log out at the identity provider itself.</p>
            """
        case .unverified(let reason, let detail):
            there = """
            <p id="ssogate-slo" data-result="\(Markup.escape(reason))">The answer from your identity provider could not be checked
            (<code>\(Markup.escape(reason))</code>: \(Markup.escape(detail))), so it is not known whether it logged you out there:
            close the browser, or log out at the identity provider itself.</p>
            """
        case .startedThere:
            there = "<p id=\"ssogate-slo\" data-result=\"success\">Your identity provider asked for this logout.</p>"
        }
        return frame("Logged out", """
        <h1 id="ssogate-logged-out">You are logged out of \(org)</h1>\(there)<p><a href="/">Continue</a></p>
        """)
    }

    /// A LogoutRequest that was refused: nobody was logged out.
    package static func requestRefused(organization: String, reason: String, detail: String) -> String {
        frame("Logout refused", """
        <h1>This logout request was refused</h1><p>A logout for <b>\(Markup.escape(organization))</b> arrived that could not be trusted,
        so no session ended.</p><p>Reason: <code id="ssogate-reason">\(Markup.escape(reason))</code> (\(Markup.escape(detail)))</p>
        <p class=hint>If you meant to log out, use <a href="/_ssogate/logout">the logout page</a>.</p>
        """)
    }
}
