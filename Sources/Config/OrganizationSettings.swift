import CryptoCore
import Foundation

/// The IdP settings an org admin edits in the console and the API (docs/CONTRACT.md
/// "Organization settings"): what Okta shows on its "View SAML setup instructions" page.
public struct IdPSettings: Sendable, Equatable, Codable {
    public var signOnURL: String
    public var idpEntityID: String?
    /// PEM, one certificate each; several while the IdP rolls its key over.
    public var certificates: [String]
    public var allowIdPInitiated: Bool

    enum CodingKeys: String, CodingKey {
        case signOnURL = "sign_on_url", idpEntityID = "idp_entity_id", certificates, allowIdPInitiated = "allow_idp_initiated"
    }

    public init(signOnURL: String, idpEntityID: String?, certificates: [String], allowIdPInitiated: Bool) {
        self.signOnURL = signOnURL
        self.idpEntityID = idpEntityID
        self.certificates = certificates
        self.allowIdPInitiated = allowIdPInitiated
    }

    /// Every problem, named by its API field (`certificates[1]`), in words an org admin
    /// can act on. Empty: the settings may be saved as a draft.
    public func problems(now: Date) -> [SettingsProblem] {
        var out: [SettingsProblem] = []
        if !ConfigValidator.isIdPURL(signOnURL) {
            out.append(.init("sign_on_url", "must be the IdP's Single Sign-On URL, https (http only for an IdP on this machine)"))
        }
        if let id = idpEntityID, id.trimmingCharacters(in: .whitespaces).isEmpty || id.count > 1024 {
            out.append(.init("idp_entity_id", "must be the IdP's entity ID (Okta: Identity Provider Issuer), or left out"))
        }
        if certificates.isEmpty { out.append(.init("certificates", "paste the IdP's X.509 signing certificate (PEM, with its BEGIN and END lines)")) }
        if certificates.count > 4 { out.append(.init("certificates", "at most 4 certificates (one, or two during a rollover)")) }
        for (index, pem) in certificates.enumerated() {
            if let problem = Self.certificateProblem(pem, now: now) { out.append(.init("certificates[\(index)]", problem)) }
        }
        return out
    }

    /// Why a pasted certificate cannot be trusted, or nil.
    static func certificateProblem(_ pem: String, now: Date) -> String? {
        let parsed: [X509Certificate]
        do {
            parsed = try X509Certificate.parseAll(pem: pem)
        } catch {
            return "is not a PEM certificate: paste it whole, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----"
        }
        guard parsed.count == 1, let certificate = parsed.first else { return "holds \(parsed.count) certificates: paste one per entry" }
        do {
            _ = try certificate.publicKey()
        } catch {
            return "has a key this gateway does not trust: \(error.reason) (an RSA key of 2048 bits or more, or an EC key)"
        }
        if certificate.notAfter <= Int64(now.timeIntervalSince1970) {
            return "expired on \(CertificateSummary.day(certificate.notAfter)): download the current one from the IdP"
        }
        return nil
    }

    /// The parsed certificates, or nil when one no longer parses.
    func parsedCertificates() -> [X509Certificate]? {
        var out: [X509Certificate] = []
        for pem in certificates {
            guard let parsed = try? X509Certificate.parseAll(pem: pem), parsed.count == 1 else { return nil }
            out += parsed
        }
        return out.isEmpty ? nil : out
    }
}

/// One problem of submitted settings: the API's `{"field", "message"}`.
public struct SettingsProblem: Sendable, Equatable, Codable, CustomStringConvertible {
    public let field: String
    public let message: String
    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { "\(field): \(message)" }
}

/// The outcome of a test login with some settings.
public struct TestResult: Sendable, Equatable, Codable {
    public let ok: Bool
    /// Seconds since 1970.
    public let at: Int64
    /// The reason code of a failed test (`signature_invalid`), nil when it passed.
    public let reason: String?

    public init(ok: Bool, at: Int64, reason: String?) {
        self.ok = ok
        self.at = at
        self.reason = reason
    }
}

/// One organization's settings as the store keeps them.
public struct OrganizationSettings: Sendable, Equatable, Codable {
    /// What logins use now; nil until the first test passed (or the file seeded it).
    public var active: IdPSettings?
    /// The test that made `active` active; nil for settings seeded from the file.
    public var activeTested: TestResult?
    /// Saved, not yet in force: becomes active when a test with it passes.
    public var draft: IdPSettings?
    public var draftTested: TestResult?
    /// Counts saved drafts, so a test result is applied only to the draft it tested.
    public var draftRevision: Int64
    /// The "Enable SAML SSO" toggle.
    public var enabled: Bool
    /// The role mapping set in the console (nil: the file's). In force at once: it changes
    /// what members may do, not which IdP is trusted, so it needs no test login.
    public var roleMapping: StoredRoleMapping?
    /// The access policy set in the console (nil: the file's), in force at once like the role mapping.
    public var access: AccessPolicy?

    public init(active: IdPSettings?, activeTested: TestResult?, draft: IdPSettings?, draftTested: TestResult?,
                draftRevision: Int64, enabled: Bool, roleMapping: StoredRoleMapping? = nil, access: AccessPolicy? = nil) {
        self.active = active
        self.activeTested = activeTested
        self.draft = draft
        self.draftTested = draftTested
        self.draftRevision = draftRevision
        self.enabled = enabled
        self.roleMapping = roleMapping
        self.access = access
    }
}

/// Hugging Face's SSO role mapping as the console edits it: the attribute that carries
/// groups, `value → role` rows (the most privileged match wins), and the role of members
/// no row matches.
public struct StoredRoleMapping: Sendable, Equatable, Codable {
    public struct Rule: Sendable, Equatable, Codable {
        public var value: String
        public var role: String
        /// The role holds inside this resource group only.
        public var resourceGroup: String?

        enum CodingKeys: String, CodingKey { case value, role, resourceGroup = "resource_group" }

        public init(value: String, role: String, resourceGroup: String? = nil) {
            self.value = value
            self.role = role
            self.resourceGroup = resourceGroup
        }
    }
    public var attribute: String
    public var rules: [Rule]
    public var defaultRole: String

    enum CodingKeys: String, CodingKey { case attribute, rules, defaultRole = "default_role" }

    public init(attribute: String, rules: [Rule], defaultRole: String) {
        self.attribute = attribute
        self.rules = rules
        self.defaultRole = defaultRole
    }

    public init(_ mapping: GatewayConfiguration.RoleMapping) {
        self.init(attribute: mapping.attribute, rules: mapping.rules.map { Rule(value: $0.value, role: $0.role.name, resourceGroup: $0.resourceGroup) },
                  defaultRole: mapping.defaultRole.name)
    }

    static func role(_ name: String) -> GatewayConfiguration.Role? {
        GatewayConfiguration.Role.allCases.first { $0.name == name }
    }

    /// Every problem, by field (`rules[2]`), or none.
    public func problems() -> [SettingsProblem] {
        var out: [SettingsProblem] = []
        let roles = "read, contributor, write or admin"
        if attribute.trimmingCharacters(in: .whitespaces).isEmpty || attribute.count > 256 {
            out.append(.init("role_mapping.attribute", "name the SAML attribute that carries the groups (Okta's group statement: groups)"))
        }
        if rules.count > 64 { out.append(.init("role_mapping.rules", "at most 64 rows")) }
        for (index, rule) in rules.enumerated() {
            if rule.value.isEmpty || rule.value.count > 256 { out.append(.init("role_mapping.rules[\(index)]", "a group value is needed before the =")) }
            if Self.role(rule.role) == nil { out.append(.init("role_mapping.rules[\(index)]", "\"\(rule.role)\" is not a role: use \(roles)")) }
        }
        if Self.role(defaultRole) == nil { out.append(.init("role_mapping.default_role", "must be \(roles)")) }
        return out
    }

    /// The mapping the gateway applies; nil when a role name is unknown.
    public var mapping: GatewayConfiguration.RoleMapping? {
        var parsed: [GatewayConfiguration.RoleMapping.Rule] = []
        for rule in rules {
            guard let role = Self.role(rule.role) else { return nil }
            parsed.append(.init(value: rule.value, role: role, resourceGroup: rule.resourceGroup))
        }
        guard let fallback = Self.role(defaultRole) else { return nil }
        return GatewayConfiguration.RoleMapping(attribute: attribute, rules: parsed, defaultRole: fallback)
    }
}

/// What the console shows of a certificate.
public struct CertificateSummary: Sendable, Equatable {
    public let subject: String
    public let key: String
    public let notAfter: Int64
    public let fingerprint: String

    public init?(pem: String) {
        guard let certificate = try? X509Certificate.parseAll(pem: pem).first else { return nil }
        subject = certificate.subject
        if let publicKey = try? certificate.publicKey() {
            key = publicKey.isRSA ? "RSA \(publicKey.bits) bits" : "EC \(publicKey.bits) bits"
        } else {
            key = "a key this gateway does not trust"
        }
        notAfter = certificate.notAfter
        fingerprint = certificate.sha256Fingerprint
    }

    /// PEM text of a DER certificate, 64 base64 characters a line.
    public static func pem(_ der: [UInt8]) -> String {
        let base64 = Data(der).base64EncodedString()
        var lines: [Substring] = []
        var start = base64.startIndex
        while start < base64.endIndex {
            let end = base64.index(start, offsetBy: 64, limitedBy: base64.endIndex) ?? base64.endIndex
            lines.append(base64[start..<end])
            start = end
        }
        return "-----BEGIN CERTIFICATE-----\n" + lines.joined(separator: "\n") + "\n-----END CERTIFICATE-----\n"
    }

    /// `2027-03-01` (with `time`: `2027-03-01 10:00 UTC`), as a person reads a date.
    public static func day(_ seconds: Int64, time: Bool = false) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = time ? "yyyy-MM-dd HH:mm 'UTC'" : "yyyy-MM-dd"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }
}

extension GatewayConfiguration.Organization {
    /// The IdP settings in force, as the console and the API show them: nil until the
    /// organization has a Sign-On URL and a certificate.
    public var idpSettings: IdPSettings? {
        guard let url = saml.signOnURL, !saml.certificates.isEmpty else { return nil }
        return IdPSettings(signOnURL: url, idpEntityID: saml.idpEntityID, certificates: saml.certificates.map { CertificateSummary.pem($0.der) },
                           allowIdPInitiated: saml.allowIdPInitiated)
    }
}

extension GatewayConfiguration {
    /// The settings file seed of a console-managed organization: what its file section
    /// gives, when it gives a URL and certificates.
    public func seed(for organization: Organization) -> OrganizationSettings? {
        guard organization.managed == .console else { return nil }
        let active = organization.idpSettings
        return OrganizationSettings(active: active, activeTested: nil, draft: nil, draftTested: nil,
                                    draftRevision: 0, enabled: organization.saml.enabled && active != nil)
    }

    /// This configuration with the stored settings of console-managed organizations in
    /// force. File-managed organizations are never changed by the store.
    public func applying(_ stored: [String: OrganizationSettings]) -> GatewayConfiguration {
        var copy = self
        copy.organizations = organizations.map { org in
            guard org.managed == .console, let settings = stored[org.name] else { return org }
            var org = org
            if let mapping = settings.roleMapping?.mapping { org.roleMapping = mapping }
            if let access = settings.access { org.access = access }
            if let active = settings.active, let certificates = active.parsedCertificates() {
                org.saml.signOnURL = active.signOnURL
                org.saml.idpEntityID = active.idpEntityID
                org.saml.certificates = certificates
                org.saml.allowIdPInitiated = active.allowIdPInitiated
                org.saml.enabled = settings.enabled
            } else {
                org.saml.enabled = false
            }
            return org
        }
        return copy
    }

    /// This configuration as test logins of draft settings see it: each console-managed
    /// organization with a draft has the draft's IdP (a test works while SSO is off, so
    /// `enabled` is left as it is). Nil when no organization has a draft to test; otherwise
    /// also the draft revision of each organization concerned.
    public func applyingDrafts(_ stored: [String: OrganizationSettings]) -> (GatewayConfiguration, [String: Int64])? {
        var revisions: [String: Int64] = [:]
        var copy = self
        copy.organizations = organizations.map { org in
            guard org.managed == .console, let settings = stored[org.name], let draft = settings.draft,
                  let certificates = draft.parsedCertificates() else { return org }
            var org = org
            org.saml.signOnURL = draft.signOnURL
            org.saml.idpEntityID = draft.idpEntityID
            org.saml.certificates = certificates
            org.saml.allowIdPInitiated = draft.allowIdPInitiated
            revisions[org.name] = settings.draftRevision
            return org
        }
        return revisions.isEmpty ? nil : (copy, revisions)
    }
}
