import Foundation
import Sessions
import XMLCore

/// The member's "Access tokens" page (`/organizations/{org}/settings/tokens`): their tokens
/// for the organization (an org admin sees everyone's), a form to make one, and the new
/// token shown once with the `git` line to use it.
package enum TokensPage {
    package struct View: Sendable {
        package var organization: String
        package var member: String
        package var admin: Bool
        package var tokens: [AccessToken]
        package var csrf: String
        package var maxDays: Int
        /// The token just made, shown this once.
        package var created: (text: String, token: AccessToken)?
        package var notice: String?
        /// `https://hub.example.com`, for the git line.
        package var publicURL: String

        package init(organization: String, member: String, admin: Bool, tokens: [AccessToken], csrf: String, maxDays: Int,
                     created: (text: String, token: AccessToken)?, notice: String?, publicURL: String) {
            self.organization = organization
            self.member = member
            self.admin = admin
            self.tokens = tokens
            self.csrf = csrf
            self.maxDays = maxDays
            self.created = created
            self.notice = notice
            self.publicURL = publicURL
        }
    }

    static func e(_ text: String) -> String { Markup.escape(text) }

    package static func page(_ v: View) -> String {
        let base = "/organizations/\(v.organization)/settings/tokens"
        var body = "<h1>Access tokens</h1><p class=hint>For <code>git</code>, hub CLIs and scripts: a token acts as you, "
            + "<b>\(e(v.member))</b>, in <b>\(e(v.organization))</b> only, until it expires or is revoked, and stops when your access to "
            + "\(e(v.organization)) ends.</p>"
        if let notice = v.notice { body += "<p class=notice id=ssogate-notice>\(e(notice))</p>" }
        if let (text, token) = v.created {
            let host = v.publicURL.replacingOccurrences(of: "https://", with: "").replacingOccurrences(of: "http://", with: "")
            let scheme = v.publicURL.hasPrefix("https://") ? "https" : "http"
            body += """
            <section id="ssogate-new-token"><h2>Your new token "\(e(token.name))"</h2>
            <p class=warn>Copy it now: it is shown this once.</p><p><code id="ssogate-token">\(e(text))</code></p>
            <p class=hint>With git, give it as the password (any user name), for example:</p>
            <p><code>git clone \(scheme)://\(e(v.member.split(separator: "@").first.map(String.init) ?? "me")):\(e(text))@\(e(host))/\(e(v.organization))/REPOSITORY</code></p>
            <p class=hint>Or send <code>Authorization: Bearer \(e(text))</code>.</p></section>
            """
        }
        var rows = ""
        for token in v.tokens {
            let state = token.revoked ? "<span class=\"badge bad\">revoked</span>" : "<span class=\"badge on\">active</span>"
            let revoke = token.revoked ? "" : """
                <form method="post" action="\(base)/revoke" style="display:inline"><input type="hidden" name="csrf" value="\(e(v.csrf))">\
                <input type="hidden" name="id" value="\(e(token.id))"><button type="submit" class="secondary" style="margin:0">Revoke</button></form>
                """
            rows += "<tr><td>\(e(token.name))</td>" + (v.admin ? "<td>\(e(token.subject))</td>" : "")
                + "<td>\(token.readOnly ? "read-only" : "read and write")</td><td>\(ConsolePage.day(token.created))</td>"
                + "<td>\(ConsolePage.day(token.expires))</td><td>\(token.lastUsed.map(ConsolePage.day) ?? "never")</td><td>\(state) \(revoke)</td></tr>"
        }
        if v.tokens.isEmpty { rows = "<tr><td colspan=7>No tokens yet.</td></tr>" }
        body += """
        <section><h2>\(v.admin ? "Tokens of \(e(v.organization))'s members" : "Your tokens")</h2><table id="ssogate-tokens"><tr><th>Name</th>\
        \(v.admin ? "<th>Member</th>" : "")<th>Access</th><th>Created</th><th>Expires</th><th>Last used</th><th></th></tr>\(rows)</table></section>
        <section><h2>New token</h2><form method="post" action="\(base)"><input type="hidden" name="csrf" value="\(e(v.csrf))">
        <label for="name">Name</label><input type="text" id="name" name="name" placeholder="laptop git" maxlength="100">
        <label for="days">Expires in (days, at most \(v.maxDays))</label><input type="text" id="days" name="days" value="\(min(30, v.maxDays))">
        <label><input type="checkbox" name="read_only" value="on"> Read-only (reading and git clone or pull; no push, no changes)</label>
        <button type="submit" id="ssogate-create-token">Create token</button></form></section>
        """
        return ConsolePage.frame(v.organization, "Access tokens", body, actor: v.member, trail: "<b>Access tokens</b>")
    }
}
