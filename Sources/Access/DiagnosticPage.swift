import HTTPWire
import SAML
import XMLCore

/// The small HTML pages of the login flow: the test-mode diagnostics ("Update and Test
/// SAML Configuration") and the failure page a person sees.
package enum DiagnosticPage {
    package static func frame(_ title: String, _ body: String) -> String {
        """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(Markup.escape(title))</title>
        <style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:50rem}td{padding:.2rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}code{background:#f4f4f4;padding:0 .2rem}</style>
        </head><body>\(body)</body></html>
        """
    }

    /// - Parameter refusedBy: the reason code when the access policy would refuse this member.
    package static func success(organization: String, assertion: ValidatedAssertion, role: String?, email: String?, back: String? = nil,
                                refusedBy: String? = nil) -> String {
        var rows = "<tr><td>NameID</td><td><code>\(Markup.escape(assertion.nameID))</code></td></tr>"
        rows += "<tr><td>NameID format</td><td>\(Markup.escape(assertion.nameIDFormat ?? "-"))</td></tr>"
        rows += "<tr><td>Email</td><td>\(Markup.escape(email ?? "-"))</td></tr>"
        rows += "<tr><td>Issuer</td><td>\(Markup.escape(assertion.issuer))</td></tr>"
        rows += "<tr><td>Role the mapping gives</td><td>\(Markup.escape(role ?? "no role mapping configured"))</td></tr>"
        rows += "<tr><td>Verified by certificate (SHA-256)</td><td><code>\(Markup.escape(assertion.verifiedBy))</code></td></tr>"
        for name in assertion.attributes.keys.sorted() {
            rows += "<tr><td>\(Markup.escape(name))</td><td>\(assertion.attributes[name]!.map(Markup.escape).joined(separator: "<br>"))</td></tr>"
        }
        return frame("SAML test succeeded", """
        <h1>SAML configuration works for \(Markup.escape(organization))</h1>
        <p id="ssogate-test-result">success</p><p>No session was issued. What the IdP asserted:</p><table>\(rows)</table>
        \(refusedBy.map { code in
            "<p id=\"ssogate-policy\">The IdP works, but the access policy would refuse this member's login: <code>\(Markup.escape(code))</code>. Members it admits log in normally.</p>"
                + (LoginAdvice.advice(for: code).map { "<p><b>Why:</b> \(Markup.escape($0.cause))</p><p><b>What to try:</b> \(Markup.escape($0.fix))</p>" } ?? "")
        } ?? "")
        \(back.map { "<p>These settings are now the active ones: members' logins use them whenever SAML SSO is enabled. <a id=\"ssogate-back\" href=\"\(Markup.escape($0))\">Back to the SSO settings</a></p>" } ?? "")
        """)
    }

    package static func failure(organization: String, error: SAMLError, requestID: String, back: String? = nil) -> String {
        let advice = LoginAdvice.advice(for: error.code).map {
            "<p><b>Usual cause:</b> \(Markup.escape($0.cause))</p><p><b>What to try:</b> \(Markup.escape($0.fix))</p>"
        } ?? ""
        return frame("SAML test failed", """
        <h1>SAML test failed for \(Markup.escape(organization))</h1>
        <p id="ssogate-test-result">\(Markup.escape(error.code))</p>\(advice)
        <p>Detail: <code>\(Markup.escape(error.detail))</code></p><p>Request id: <code>\(Markup.escape(requestID))</code></p>
        \(back.map { "<p>The settings you tested stay saved, not active; members keep using the active ones. <a id=\"ssogate-back\" href=\"\(Markup.escape($0))\">Back to the SSO settings</a></p>" } ?? "")
        """)
    }

    /// Too many logins at once, from this address or in all: come back shortly.
    package static func turnedAway(organization: String, code: String, seconds: Int, requestID: String, retry: String) -> String {
        let what = code == "login_busy" ? "The gateway is busy checking other logins right now."
            : "Too many logins came from your network address in a short time."
        return frame("Try again shortly", """
        <h1>Try again in \(seconds) second\(seconds == 1 ? "" : "s")</h1><p>\(what) Nothing is wrong with your account or with
        <b>\(Markup.escape(organization))</b>'s single sign-on.</p><p>Reason: <code id="ssogate-reason">\(Markup.escape(code))</code>.
        Request id: <code>\(Markup.escape(requestID))</code></p><p><a href="\(Markup.escape(retry))">Sign in again</a></p>
        """)
    }

    package static func loginFailed(organization: String, code: String, requestID: String, retry: String) -> String {
        frame("Login failed", """
        <h1>Login failed</h1><p>The single sign-on response for <b>\(Markup.escape(organization))</b> was refused:
        <code id="ssogate-reason">\(Markup.escape(code))</code>.</p><p>Request id: <code>\(Markup.escape(requestID))</code></p>
        <p><a href="\(Markup.escape(retry))">Try again</a></p>
        """)
    }
}
