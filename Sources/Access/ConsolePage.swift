import Config
import Foundation
import XMLCore

/// The org admin's console (docs/CONTRACT.md "Organization settings"), as HTML built from
/// values: the "Organization Settings → SSO → SAML" page, its audit log, and the pages
/// that say why someone may not see them. No script; every action is a form.
package enum ConsolePage {
    /// What the settings page shows.
    package struct Settings: Sendable {
        package var organization: String
        package var id: String?
        package var managedInConsole: Bool
        package var spEntityID: String
        package var acsURL: String
        package var metadataURL: String
        package var enabled: Bool
        package var active: IdPSettings?
        package var activeTested: TestResult?
        package var draft: IdPSettings?
        package var draftTested: TestResult?
        /// The form's values: what was pasted last (kept when it is refused), or the draft's
        /// or active settings'.
        package var form: Form
        package var problems: [SettingsProblem]
        /// A line saying what just happened (`Settings saved`, `SAML SSO enabled`).
        package var notice: String?
        package var csrf: String
        /// Who is signed in to the console.
        package var actor: String
        /// The role mapping as the form shows it (in force, or as sent when refused).
        package var roles = Roles(attribute: "groups", rules: "", defaultRole: "read")
        /// The access policy as the form shows it.
        package var policy = Policy(AccessPolicy.open)

        package init(organization: String, id: String?, managedInConsole: Bool, spEntityID: String, acsURL: String, metadataURL: String,
                     enabled: Bool, active: IdPSettings?, activeTested: TestResult?, draft: IdPSettings?, draftTested: TestResult?,
                     form: Form, problems: [SettingsProblem], notice: String?, csrf: String, actor: String) {
            self.organization = organization
            self.id = id
            self.managedInConsole = managedInConsole
            self.spEntityID = spEntityID
            self.acsURL = acsURL
            self.metadataURL = metadataURL
            self.enabled = enabled
            self.active = active
            self.activeTested = activeTested
            self.draft = draft
            self.draftTested = draftTested
            self.form = form
            self.problems = problems
            self.notice = notice
            self.csrf = csrf
            self.actor = actor
        }
    }

    /// The role mapping's form: one `value = role` row a line.
    package struct Roles: Sendable, Equatable {
        package var attribute: String
        package var rules: String
        package var defaultRole: String

        package init(attribute: String, rules: String, defaultRole: String) {
            self.attribute = attribute
            self.rules = rules
            self.defaultRole = defaultRole
        }

        package init(_ mapping: StoredRoleMapping) {
            self.init(attribute: mapping.attribute,
                      rules: mapping.rules.map { "\($0.value) = \($0.role)" + ($0.resourceGroup.map { " in \($0)" } ?? "") }.joined(separator: "\n"),
                      defaultRole: mapping.defaultRole)
        }

        /// The mapping the form describes (rows without `=` become rules with no role, which
        /// the check names).
        package var mapping: StoredRoleMapping {
            let rows = rules.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return StoredRoleMapping(
                attribute: attribute.trimmingCharacters(in: .whitespaces),
                rules: rows.map { row in
                    let parts = row.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    // `group = write in secret`: the role inside the resource group `secret` only.
                    let role = parts.count > 1 ? parts[1].components(separatedBy: " in ") : [""]
                    return StoredRoleMapping.Rule(value: parts.first ?? "", role: role[0].trimmingCharacters(in: .whitespaces),
                                                  resourceGroup: role.count > 1 ? role[1].trimmingCharacters(in: .whitespaces) : nil)
                },
                defaultRole: defaultRole)
        }
    }

    /// The access policy's form: lists as text, one entry a line.
    package struct Policy: Sendable, Equatable {
        package var refuseUnmapped: Bool
        package var domains: String
        package var enforceRoles: Bool
        package var ssoOptional: Bool
        /// `email = role`, or `email = role from ORG`.
        package var collaborators: String
        /// `name: /acme/secret-*, /datasets/acme/secret-*`.
        package var groups: String
        package var contact: String
        /// A role name set in the file for unmapped members, kept as it is.
        var defaultRole: String?

        package init(refuseUnmapped: Bool, domains: String, enforceRoles: Bool, ssoOptional: Bool, collaborators: String, groups: String,
                     contact: String) {
            self.refuseUnmapped = refuseUnmapped
            self.domains = domains
            self.enforceRoles = enforceRoles
            self.ssoOptional = ssoOptional
            self.collaborators = collaborators
            self.groups = groups
            self.contact = contact
        }

        package init(_ policy: AccessPolicy) {
            self.init(refuseUnmapped: policy.refusesUnmapped, domains: policy.allowedEmailDomains.joined(separator: "\n"),
                      enforceRoles: policy.enforceRoles, ssoOptional: policy.sso == .optional,
                      collaborators: policy.externalCollaborators.map { "\($0.email) = \($0.role)" + ($0.organization.map { " from \($0)" } ?? "") }
                          .joined(separator: "\n"),
                      groups: policy.resourceGroups.map { "\($0.name): \($0.paths.joined(separator: ", "))" }.joined(separator: "\n"),
                      contact: policy.contact ?? "")
            defaultRole = policy.refusesUnmapped ? nil : policy.defaultRole
        }

        /// A role name the file gave unmapped members stays, unless the form now refuses them.
        package mutating func keepDefaultRole(of policy: AccessPolicy) {
            defaultRole = policy.refusesUnmapped ? nil : policy.defaultRole
        }

        private static func lines(_ text: String) -> [String] {
            text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        /// The policy the form describes; what does not parse is left for `problems` to name.
        package var policy: AccessPolicy {
            let domainList = Self.lines(domains.replacingOccurrences(of: ",", with: "\n"))
            let people = Self.lines(collaborators).map { row -> AccessPolicy.Collaborator in
                let parts = row.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                let rest = parts.count > 1 ? parts[1].components(separatedBy: " from ") : ["read"]
                return AccessPolicy.Collaborator(email: parts[0], role: rest[0].trimmingCharacters(in: .whitespaces),
                                                 organization: rest.count > 1 ? rest[1].trimmingCharacters(in: .whitespaces) : nil)
            }
            let groupList = Self.lines(groups).map { row -> AccessPolicy.ResourceGroup in
                let parts = row.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                let paths = parts.count > 1 ? parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } : []
                return AccessPolicy.ResourceGroup(name: parts[0], paths: paths)
            }
            let trimmed = contact.trimmingCharacters(in: .whitespaces)
            return AccessPolicy(defaultRole: refuseUnmapped ? "none" : defaultRole, allowedEmailDomains: domainList, enforceRoles: enforceRoles,
                                externalCollaborators: people, sso: ssoOptional ? .optional : .required, resourceGroups: groupList,
                                contact: trimmed.isEmpty ? nil : trimmed)
        }
    }

    package struct Form: Sendable, Equatable {
        package var signOnURL: String
        package var idpEntityID: String
        /// One or more PEM certificates, as pasted.
        package var certificates: String
        package var allowIdPInitiated: Bool

        package init(signOnURL: String, idpEntityID: String, certificates: String, allowIdPInitiated: Bool) {
            self.signOnURL = signOnURL
            self.idpEntityID = idpEntityID
            self.certificates = certificates
            self.allowIdPInitiated = allowIdPInitiated
        }

        package init(_ settings: IdPSettings?) {
            self.init(signOnURL: settings?.signOnURL ?? "", idpEntityID: settings?.idpEntityID ?? "",
                      certificates: settings?.certificates.joined() ?? "", allowIdPInitiated: settings?.allowIdPInitiated ?? false)
        }

        /// The settings the form describes: each PEM block of the certificate box is one
        /// certificate (two during a rollover).
        package var settings: IdPSettings {
            IdPSettings(signOnURL: signOnURL.trimmingCharacters(in: .whitespacesAndNewlines),
                        idpEntityID: idpEntityID.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil
                            : idpEntityID.trimmingCharacters(in: .whitespacesAndNewlines),
                        certificates: Self.pemBlocks(certificates), allowIdPInitiated: allowIdPInitiated)
        }

        /// Each `BEGIN CERTIFICATE`...`END CERTIFICATE` block; the whole text when there is
        /// none (so the check names it as not a certificate).
        static func pemBlocks(_ text: String) -> [String] {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { return [] }
            let end = "-----END CERTIFICATE-----"
            var blocks: [String] = []
            var rest = Substring(trimmed)
            while let start = rest.range(of: "-----BEGIN CERTIFICATE-----"), let stop = rest[start.upperBound...].range(of: end) {
                blocks.append(String(rest[start.lowerBound..<stop.upperBound]) + "\n")
                rest = rest[stop.upperBound...]
            }
            return blocks.isEmpty ? [trimmed] : blocks
        }
    }

    static let style = """
    body{font-family:system-ui,-apple-system,sans-serif;margin:0;color:#1f2937;background:#f9fafb}
    header{background:#fff;border-bottom:1px solid #e5e7eb;padding:.8rem 2rem;font-size:.9rem;color:#6b7280}
    header b{color:#111827}main{max-width:52rem;margin:1.5rem auto;padding:0 1rem}
    section{background:#fff;border:1px solid #e5e7eb;border-radius:.6rem;padding:1rem 1.4rem;margin-bottom:1.2rem}
    h1{font-size:1.5rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:.2rem 0 .8rem}
    table{border-collapse:collapse;width:100%}td,th{padding:.35rem .5rem;border-bottom:1px solid #f3f4f6;text-align:left;vertical-align:top;font-size:.92rem}
    th{color:#6b7280;font-weight:500;width:14rem}code{background:#f3f4f6;padding:.05rem .3rem;border-radius:.25rem;word-break:break-all}
    label{display:block;font-weight:600;margin:.9rem 0 .3rem}input[type=text],input[type=url],textarea{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #d1d5db;border-radius:.4rem;font:inherit}
    textarea{font-family:ui-monospace,monospace;font-size:.8rem;height:11rem}.hint{color:#6b7280;font-size:.85rem;margin:.2rem 0}
    .problem{color:#b91c1c;font-size:.88rem;margin:.3rem 0}.notice{background:#ecfdf5;border:1px solid #a7f3d0;padding:.6rem 1rem;border-radius:.4rem}
    .warn{background:#fef2f2;border:1px solid #fecaca;padding:.6rem 1rem;border-radius:.4rem}
    button{background:#111827;color:#fff;border:0;border-radius:.4rem;padding:.55rem 1rem;font:inherit;cursor:pointer;margin-top:1rem}
    button.secondary{background:#fff;color:#111827;border:1px solid #d1d5db}button:disabled{background:#9ca3af;cursor:not-allowed}
    .badge{display:inline-block;padding:.1rem .5rem;border-radius:1rem;font-size:.8rem;font-weight:600}
    .on{background:#dcfce7;color:#166534}.off{background:#f3f4f6;color:#374151}.bad{background:#fee2e2;color:#991b1b}
    """

    static func frame(_ organization: String, _ title: String, _ body: String, actor: String? = nil, trail: String = "<b>SSO</b> → SAML") -> String {
        let who = actor.map { " · signed in as <b>\(Markup.escape($0))</b>" } ?? ""
        return """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
        <title>\(Markup.escape(title)) · \(Markup.escape(organization))</title><style>\(style)</style></head><body>
        <header>Organization Settings → \(trail) · <b>\(Markup.escape(organization))</b>\(who)</header><main>\(body)</main></body></html>
        """
    }

    static func e(_ text: String) -> String { Markup.escape(text) }

    static func day(_ seconds: Int64) -> String { CertificateSummary.day(seconds, time: true) }

    /// A settings table: where logins go, whom they trust, how the last test went.
    static func settingsTable(_ s: IdPSettings, tested: TestResult?) -> String {
        var rows = "<tr><th>IdP Sign-On URL</th><td><code>\(e(s.signOnURL))</code></td></tr>"
        rows += "<tr><th>IdP entity ID</th><td>\(s.idpEntityID.map { "<code>\(e($0))</code>" } ?? "not checked")</td></tr>"
        for (index, pem) in s.certificates.enumerated() {
            let summary = CertificateSummary(pem: pem)
            let text = summary.map { "\(e($0.subject)) · \(e($0.key)) · expires \(day($0.notAfter))<br><span class=hint>SHA-256 \(e($0.fingerprint))</span>" }
                ?? "unreadable"
            rows += "<tr><th>Certificate\(s.certificates.count > 1 ? " \(index + 1)" : "")</th><td>\(text)</td></tr>"
        }
        rows += "<tr><th>Logins from the IdP tile</th><td>\(s.allowIdPInitiated ? "allowed" : "not allowed")</td></tr>"
        rows += "<tr><th>Last test</th><td>\(testText(tested))</td></tr>"
        return "<table>\(rows)</table>"
    }

    static func testText(_ tested: TestResult?) -> String {
        guard let tested else { return "not tested yet" }
        if tested.ok { return "<span class=\"badge on\">passed</span> \(day(tested.at))" }
        let code = tested.reason ?? "failed"
        var text = "<span class=\"badge bad\">failed</span> \(day(tested.at)): <code id=\"ssogate-draft-reason\">\(e(code))</code>"
        if let advice = LoginAdvice.advice(for: code) {
            text += "<p class=hint>\(e(advice.cause))</p><p><b>Try:</b> \(e(advice.fix))</p>"
        }
        return text
    }

    package static func settings(_ v: Settings) -> String {
        let base = "/organizations/\(v.organization)/settings/sso"
        // The form token also stands in the page itself, for scripts that drive the console.
        var body = "<meta name=\"ssogate-csrf\" content=\"\(e(v.csrf))\"><h1>Single sign-on with SAML</h1>"
        if let notice = v.notice { body += "<p class=notice id=ssogate-notice>\(e(notice))</p>" }
        // A metadata file that could not be read is said beside its form; it changed nothing.
        let unsaved = v.problems.filter { $0.field != "metadata" }
        if !unsaved.isEmpty {
            body += "<p class=warn>The settings you sent were not saved: \(unsaved.count == 1 ? "one thing is" : "\(unsaved.count) things are") marked below.</p>"
        }
        body += """
        <section><h2>Organization</h2><table><tr><th>Organization Name</th><td><code>\(e(v.organization))</code></td></tr>
        <tr><th>Organization ID</th><td><code>\(e(v.id ?? "not set"))</code></td></tr>
        <tr><th>SAML SSO</th><td id="ssogate-enabled"><span class="badge \(v.enabled ? "on" : "off")">\(v.enabled ? "enabled" : "disabled")</span></td></tr></table></section>
        <section><h2>Paste these into your IdP</h2><p class=hint>In Okta: Applications → Create App Integration → SAML 2.0.</p><table>
        <tr><th>Single sign-on URL (ACS URL)</th><td><code id="ssogate-acs-url">\(e(v.acsURL))</code></td></tr>
        <tr><th>Audience URI (SP Entity ID)</th><td><code id="ssogate-sp-entity-id">\(e(v.spEntityID))</code></td></tr>
        <tr><th>SP metadata</th><td><a href="\(e(v.metadataURL))">\(e(v.metadataURL))</a> · <a href="\(e(v.metadataURL))" download="\(e(v.organization))-sp-metadata.xml">download</a></td></tr>
        <tr><th>Name ID format</th><td>EmailAddress</td></tr></table></section>
        """
        body += "<section><h2>Active settings</h2>"
        if let active = v.active {
            body += "<p class=hint>What members' logins use now.</p>" + settingsTable(active, tested: v.activeTested)
        } else {
            body += "<p>None yet. Paste your IdP's settings below and test them: they become active when a test login passes.</p>"
        }
        body += "</section>"
        if let draft = v.draft {
            body += "<section id=ssogate-draft><h2>Saved, not active yet</h2><p class=hint>These settings become active when a test login with them passes; until then members keep logging in with the active settings.</p>"
                + settingsTable(draft, tested: v.draftTested) + "</section>"
        }
        guard v.managedInConsole else {
            body += "<section><p class=warn>This organization's settings are managed in the gateway's configuration file: ask the operator to change them.</p></section>"
            body += policySummary(v.policy.policy)
            body += sessionsSection(v)
            return frame(v.organization, "SAML settings", body, actor: v.actor)
        }
        func problems(_ field: String) -> String {
            v.problems.filter { $0.field == field || $0.field.hasPrefix(field + "[") }.map { "<p class=problem>\(e($0.message))</p>" }.joined()
        }
        let other = v.problems.filter {
            !["sign_on_url", "idp_entity_id", "certificates", "allow_idp_initiated", "role_mapping", "metadata"].contains(where: $0.field.hasPrefix)
        }
        body += """
        <section id="ssogate-import"><h2>Fill in from IdP metadata</h2><p class=hint>Optional. Okta: Sign On → "Identity Provider metadata"
        (save the page as a file, or copy its address). The settings below are filled in from it; nothing is saved until you test them.</p>
        <form method="post" action="\(base)/metadata" enctype="multipart/form-data"><input type="hidden" name="csrf" value="\(e(v.csrf))">
        <label for="metadata_file">Metadata file</label><input type="file" id="metadata_file" name="metadata_file" accept=".xml,application/samlmetadata+xml,text/xml">
        <label for="metadata_url">or its address</label><input type="text" inputmode="url" id="metadata_url" name="metadata_url" placeholder="https://acme.okta.com/app/exk.../sso/saml/metadata">
        \(problems("metadata"))<button type="submit" class="secondary" id="ssogate-read-metadata">Read metadata</button></form></section>
        <section><h2>IdP settings</h2>\(unsaved.isEmpty ? "" : "<p class=warn id=ssogate-problems>Nothing was saved: fix what is marked below.</p>")
        \(other.map { "<p class=problem>\(e($0.description))</p>" }.joined())
        <form method="post" action="\(base)"><input type="hidden" name="csrf" value="\(e(v.csrf))">
        <label for="sign_on_url">IdP Sign-On URL</label><p class=hint>Okta: "Identity Provider Single Sign-On URL".</p>
        <input type="text" inputmode="url" id="sign_on_url" name="sign_on_url" value="\(e(v.form.signOnURL))" placeholder="https://acme.okta.com/app/acme_hf/exk.../sso/saml">\(problems("sign_on_url"))
        <label for="idp_entity_id">IdP entity ID (optional)</label><p class=hint>Okta: "Identity Provider Issuer". When set, answers from another issuer are refused.</p>
        <input type="text" id="idp_entity_id" name="idp_entity_id" value="\(e(v.form.idpEntityID))" placeholder="http://www.okta.com/exk...">\(problems("idp_entity_id"))
        <label for="certificate">X.509 certificate</label><p class=hint>Okta: "X.509 Certificate", with its BEGIN and END lines. During a rollover, paste both.</p>
        <textarea id="certificate" name="certificate" placeholder="-----BEGIN CERTIFICATE-----">\(e(v.form.certificates))</textarea>\(problems("certificates"))
        <label><input type="checkbox" name="allow_idp_initiated" value="on"\(v.form.allowIdPInitiated ? " checked" : "")> Allow logins started from the IdP (the Okta tile)</label>
        <button type="submit" id="ssogate-update-and-test">Update and Test SAML Configuration</button>
        <p class=hint>Saves these settings, then opens a test login through your IdP. Members keep using the active settings until the test passes.</p></form></section>
        """
        let roleProblems = v.problems.filter { $0.field.hasPrefix("role_mapping") }.map { "<p class=problem>\(e($0.message))</p>" }.joined()
        body += """
        <section id="ssogate-roles"><h2>Roles</h2><p class=hint>Which role each member gets from the groups the IdP sends (the most privileged
        match wins); in force at once. Members with the admin role can open this page.</p>
        <form method="post" action="\(base)/roles"><input type="hidden" name="csrf" value="\(e(v.csrf))">
        <label for="role_attribute">Attribute with the groups</label><input type="text" id="role_attribute" name="role_attribute" value="\(e(v.roles.attribute))">
        <label for="role_rules">Rows, one a line: <code>group = role</code> (read, contributor, write, admin)</label>
        <textarea id="role_rules" name="role_rules" style="height:6rem" placeholder="hf-admins = admin">\(e(v.roles.rules))</textarea>
        <label for="default_role">Role of members no row matches</label><select id="default_role" name="default_role">\(["read", "contributor", "write", "admin"].map {
            "<option value=\"\($0)\"\($0 == v.roles.defaultRole ? " selected" : "")>\($0)</option>" }.joined())</select>\(roleProblems)
        <button type="submit" class="secondary" id="ssogate-save-roles">Save roles</button></form></section>
        """
        body += policySection(v)
        let canEnable = v.active != nil && v.activeTested?.ok == true
        if v.enabled {
            body += """
            <section><h2>Enable SAML SSO</h2><p>Members log in through your IdP.</p><form method="post" action="\(base)/disable">
            <input type="hidden" name="csrf" value="\(e(v.csrf))"><button type="submit" class="secondary" id="ssogate-disable">Disable SAML SSO</button></form></section>
            """
        } else {
            body += """
            <section><h2>Enable SAML SSO</h2><p>\(canEnable ? "The active settings passed a test: members can log in once you enable SSO."
                : "Available once a test login with the active settings has passed.")</p>
            <form method="post" action="\(base)/enable"><input type="hidden" name="csrf" value="\(e(v.csrf))">
            <button type="submit" id="ssogate-enable"\(canEnable ? "" : " disabled")>Enable SAML SSO</button></form></section>
            """
        }
        body += sessionsSection(v)
        body += "<p><a href=\"/organizations/\(e(v.organization))/settings/audit\">Audit log: who logged in, who changed what</a></p>"
        return frame(v.organization, "SAML settings", body, actor: v.actor)
    }

    /// "Who gets in": the access policy's form, in force at once on every request.
    static func policySection(_ v: Settings) -> String {
        let p = v.policy
        let problems = v.problems.filter { $0.field.hasPrefix("access") }.map { "<p class=problem>\(e($0.description))</p>" }.joined()
        return """
        <section id="ssogate-policy"><h2>Who gets in</h2><p class=hint>The access policy: in force at once, for every request and token.
        Refused members see a page that says why and whom to ask.</p>
        <form method="post" action="/organizations/\(e(v.organization))/settings/sso/access"><input type="hidden" name="csrf" value="\(e(v.csrf))">
        <label><input type="checkbox" name="refuse_unmapped" value="on" id="refuse_unmapped"\(p.refuseUnmapped ? " checked" : "")> Members no role row matches get no access (default role: none)</label>
        <label for="allowed_domains">Allowed email domains, one a line (empty: any)</label>
        <textarea id="allowed_domains" name="allowed_domains" style="height:3.5rem" placeholder="acme.com">\(e(p.domains))</textarea>
        <label><input type="checkbox" name="enforce_roles" value="on" id="enforce_roles"\(p.enforceRoles ? " checked" : "")> Members with the read role may only read (GET, HEAD, git fetch)</label>
        <label for="collaborators">External collaborators, one a line: <code>email = role</code>, or <code>email = role from ORGANIZATION</code> (the organization whose SSO vouches for them)</label>
        <textarea id="collaborators" name="collaborators" style="height:3.5rem" placeholder="bob@partner.com = read from partner">\(e(p.collaborators))</textarea>
        <label for="resource_groups">Resource groups, one a line: <code>name: /\(e(v.organization))/secret-*, ...</code>; give roles in them with role rows ending <code>in name</code></label>
        <textarea id="resource_groups" name="resource_groups" style="height:3.5rem" placeholder="secret: /\(e(v.organization))/secret-*">\(e(p.groups))</textarea>
        <label for="sso_mode">Single sign-on is</label><select id="sso_mode" name="sso_mode"><option value="required"\(p.ssoOptional ? "" : " selected")>required for the organization's content</option>
        <option value="optional"\(p.ssoOptional ? " selected" : "")>optional: content is also reachable without signing in</option></select>
        <label for="contact">Whom refused members should ask (shown to them)</label><input type="text" id="contact" name="contact" value="\(e(p.contact))" placeholder="it-help@acme.com">
        \(problems)<button type="submit" class="secondary" id="ssogate-save-policy">Save access policy</button></form></section>
        """
    }

    /// The policy of a file-managed organization, as it stands.
    static func policySummary(_ policy: AccessPolicy) -> String {
        var rows: [(String, String)] = []
        rows.append(("Members no rule maps", policy.refusesUnmapped ? "no access" : "the default role"))
        rows.append(("Allowed email domains", policy.allowedEmailDomains.isEmpty ? "any" : policy.allowedEmailDomains.joined(separator: ", ")))
        rows.append(("Read role", policy.enforceRoles ? "may only read" : "not enforced here"))
        rows.append(("External collaborators", policy.externalCollaborators.isEmpty ? "none"
            : policy.externalCollaborators.map { "\($0.email) (\($0.role))" }.joined(separator: ", ")))
        rows.append(("Resource groups", policy.resourceGroups.isEmpty ? "none" : policy.resourceGroups.map { "\($0.name): \($0.paths.joined(separator: ", "))" }.joined(separator: "; ")))
        rows.append(("Single sign-on", policy.sso.rawValue))
        return "<section id=\"ssogate-policy\"><h2>Who gets in</h2><table>"
            + rows.map { "<tr><th>\(e($0.0))</th><td>\(e($0.1))</td></tr>" }.joined() + "</table></section>"
    }

    /// "End a member's sessions" (also for file-managed organizations).
    static func sessionsSection(_ v: Settings) -> String {
        """
        <section id="ssogate-sessions"><h2>Sessions</h2><p class=hint>A lost laptop, someone who left: end every session of a member
        in \(e(v.organization)), on every device, at once. They can log in again while your IdP lets them.</p>
        <form method="post" action="/organizations/\(e(v.organization))/settings/sso/sessions"><input type="hidden" name="csrf" value="\(e(v.csrf))">
        <label for="subject">Member (their email, as the IdP sends it)</label><input type="text" id="subject" name="subject" placeholder="alice@example.com">
        <button type="submit" class="secondary" id="ssogate-end-sessions">End their sessions</button></form></section>
        """
    }

    /// One row of the audit page.
    package struct AuditRow: Sendable {
        package let time: Int64, action: String, result: String, reason: String?, actor: String?, subject: String?, ip: String?, requestID: String?
        package init(time: Int64, action: String, result: String, reason: String?, actor: String?, subject: String?, ip: String?, requestID: String?) {
            self.time = time
            self.action = action
            self.result = result
            self.reason = reason
            self.actor = actor
            self.subject = subject
            self.ip = ip
            self.requestID = requestID
        }
    }

    static let actions = ["sso.login", "sso.logout", "sso.test", "sso.settings.update", "sso.enable", "sso.disable", "admin.link",
                          "token.create", "token.revoke", "session.revoke"]

    package static func audit(organization: String, rows: [AuditRow], filters: [String: String], actor: String) -> String {
        let base = "/organizations/\(organization)/settings/audit"
        func option(_ value: String, _ selected: String?) -> String {
            "<option value=\"\(e(value))\"\(value == (selected ?? "") ? " selected" : "")>\(value.isEmpty ? "any" : e(value))</option>"
        }
        let query = filters.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
        var table = "<table id=ssogate-audit><tr><th>Time</th><th>Action</th><th>Result</th><th>Who</th><th>Client</th><th>Request</th></tr>"
        for row in rows {
            let result = row.result == "success" ? "<span class=\"badge on\">success</span>"
                : "<span class=\"badge bad\">\(e(row.result))</span>" + (row.reason.map { " <code>\(e($0))</code>" } ?? "")
            let who = [row.actor, row.subject].compactMap { $0 }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            table += "<tr><td>\(day(row.time))</td><td>\(e(row.action))</td><td>\(result)</td><td>\(e(who.joined(separator: " → ")))</td>"
                + "<td>\(e(row.ip ?? ""))</td><td><code>\(e(row.requestID ?? ""))</code></td></tr>"
        }
        if rows.isEmpty { table += "<tr><td colspan=6>No events match.</td></tr>" }
        table += "</table>"
        let body = """
        <h1>Audit log</h1><section><form method="get" action="\(base)">
        <label for="action">Action</label><select id="action" name="action">\(([""] + actions).map { option($0, filters["action"]) }.joined())</select>
        <label for="result">Result</label><select id="result" name="result">\(["", "success", "failure"].map { option($0, filters["result"]) }.joined())</select>
        <label for="since">Since (UTC, 2026-12-01T00:00:00Z)</label><input type="text" id="since" name="since" value="\(e(filters["since"] ?? ""))">
        <label for="until">Until</label><input type="text" id="until" name="until" value="\(e(filters["until"] ?? ""))">
        <button type="submit">Filter</button></form>
        <p>Export what is shown: <a id="ssogate-export-csv" href="\(base)?\(query.isEmpty ? "" : query + "&")format=csv">CSV</a> ·
        <a id="ssogate-export-jsonl" href="\(base)?\(query.isEmpty ? "" : query + "&")format=jsonl">JSON Lines</a></p></section>
        <section>\(table)</section><p><a href="/organizations/\(e(organization))/settings/sso">Back to the SAML settings</a></p>
        """
        return frame(organization, "Audit log", body, actor: actor)
    }

    /// 401: nobody is signed in to the console.
    package static func signIn(organization: String, loginURL: String) -> String {
        frame(organization, "Sign in to change SSO settings", """
        <h1>Sign in to change single sign-on settings</h1><section><p>This page is for <b>\(e(organization))</b>'s administrators.</p>
        <ul><li>If SSO already works, <a id="ssogate-console-login" href="\(e(loginURL))">log in with SSO</a> as a member whose role is <code>admin</code>.</li>
        <li>Setting SSO up for the first time: ask the gateway's operator for a one-time link (<code>ssogate admin-link --org \(e(organization))</code>); it opens this page for an hour.</li></ul></section>
        """)
    }

    /// 403: signed in, but not as this organization's administrator.
    package static func forbidden(organization: String, actor: String?, reason: String) -> String {
        frame(organization, "Not an administrator", """
        <h1>You cannot change \(e(organization))'s SSO settings</h1><section><p>\(e(reason))</p>
        <p>Ask an administrator of \(e(organization)) (a member whose role is <code>admin</code>) or the gateway's operator.</p></section>
        """, actor: actor)
    }

    /// An action refused with a reason (a stale form, enable before a test).
    package static func refused(organization: String, title: String, detail: String, actor: String?) -> String {
        frame(organization, title, """
        <h1>\(e(title))</h1><section><p>\(e(detail))</p><p><a href="/organizations/\(e(organization))/settings/sso">Back to the SAML settings</a></p></section>
        """, actor: actor)
    }
}
