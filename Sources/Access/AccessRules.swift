import Config
import HTTPWire
import Sessions

/// The access policy's decision (docs/CONTRACT.md "Access policy"): one pure function of the
/// configuration (this value, built once per flow), a grant and the request, shared by every
/// way a request reaches protected content: the proxy over HTTP/1.1 and HTTP/2, access
/// tokens, forward-auth, and the ACS (which refuses a login the policy would refuse anyway).
///
/// - The role comes from the role mapping applied to the grant's values of its attribute,
///   with the live mapping (the values are those asserted at login).
/// - Inside a resource group only a rule naming the group gives a role; an organization
///   admin keeps theirs; anyone else is refused there.
/// - A grant of another organization counts only for a listed external collaborator, whose
///   email that organization's IdP vouched for.
package struct AccessRules: Sendable {
    package enum Refusal: String, Sendable, CaseIterable {
        /// No rule maps the member and `default_role: none`, or an external person is not listed.
        case accessDenied = "access_denied"
        case emailDomainNotAllowed = "email_domain_not_allowed"
        /// `enforce_roles`: a `read` member asked to change something.
        case readOnlyRole = "role_read_only"
        /// The path is in a resource group the member has no role in.
        case resourceGroupDenied = "resource_group_denied"
    }

    package enum Verdict: Sendable, Equatable {
        /// `role`: what `X-SSO-Role` says (nil without a role mapping); `external`: the
        /// organization whose IdP vouched for an external collaborator.
        case allow(role: GatewayConfiguration.Role?, external: String?)
        case refuse(Refusal)
    }

    /// A resource group as requests are matched against it.
    package struct Group: Sendable {
        package let name: String
        /// `org/name`: its key in the loop caches, made once.
        package let key: String
        let patterns: [[[UInt8]]]
    }

    private let organizations: [String: GatewayConfiguration.Organization]
    /// Resource groups by organization, compiled once.
    private let groups: [String: [Group]]

    package init(organizations: [String: GatewayConfiguration.Organization]) {
        self.organizations = organizations
        var groups: [String: [Group]] = [:]
        for (name, org) in organizations where !org.access.resourceGroups.isEmpty {
            groups[name] = org.access.resourceGroups.map { Group(name: $0.name, key: name + "/" + $0.name, patterns: $0.paths.map(ResourcePattern.compiled)) }
        }
        self.groups = groups
    }

    // MARK: - The decision

    /// Whether `grant`, which `vouchedBy`'s IdP asserted, may make this request of `org`'s content.
    package func decide(_ org: GatewayConfiguration.Organization, grant: SessionGrant, vouchedBy: String,
                        path: Substring, method: String) -> Verdict {
        let verdict = admit(org, grant: grant, vouchedBy: vouchedBy, resourceGroup: resourceGroup(of: path, in: org)?.name)
        guard case .allow(let role, _) = verdict, Self.onlyReads(role, org.access), !Self.reads(method: method, path: path) else { return verdict }
        return .refuse(.readOnlyRole)
    }

    /// `enforce_roles`: a `read` role may only read.
    package static func onlyReads(_ role: GatewayConfiguration.Role?, _ policy: AccessPolicy) -> Bool {
        policy.enforceRoles && role == .read
    }

    /// The part of the decision that does not depend on the method (kept per session and
    /// resource group by the loop caches).
    package func admit(_ org: GatewayConfiguration.Organization, grant: SessionGrant, vouchedBy: String, resourceGroup: String?) -> Verdict {
        let policy = org.access
        if vouchedBy != org.name {
            // Someone else's member: only as a listed collaborator, and never inside a resource group.
            guard let person = collaborator(grant, vouchedBy: vouchedBy, in: org) else { return .refuse(.accessDenied) }
            if resourceGroup != nil { return .refuse(.resourceGroupDenied) }
            return .allow(role: GatewayConfiguration.Role(name: person.role) ?? .read, external: vouchedBy)
        }
        guard policy.allows(email: grant.email) else { return .refuse(.emailDomainNotAllowed) }
        guard let mapping = org.roleMapping else {
            // Without a role mapping there are no roles: no group can be entered by rule.
            return resourceGroup == nil ? .allow(role: nil, external: nil) : .refuse(.resourceGroupDenied)
        }
        let values = Set(grant.groups)
        let organizationWide = Self.organizationRole(values, mapping: mapping, policy: policy)
        if let resourceGroup {
            let inGroup = mapping.rules.lazy.filter { $0.resourceGroup == resourceGroup && values.contains($0.value) }.map(\.role).max()
            if let role = inGroup ?? (organizationWide == .admin ? .admin : nil) { return .allow(role: role, external: nil) }
            return .refuse(.resourceGroupDenied)
        }
        guard let organizationWide else { return .refuse(.accessDenied) }
        return .allow(role: organizationWide, external: nil)
    }

    /// What reading is, for a `read` role under `enforce_roles` and for a read-only token:
    /// `GET`, `HEAD`, `OPTIONS`, and git's fetch (smart HTTP posts its want/have negotiation
    /// to `.../git-upload-pack`; a push goes to `git-receive-pack` and is refused).
    package static func reads(method: String, path: Substring) -> Bool {
        method == "GET" || method == "HEAD" || method == "OPTIONS" || (method == "POST" && path.hasSuffix("/git-upload-pack"))
    }

    /// Whether a login the IdP vouched for may begin a session at all: its email is in the
    /// allowed domains, and some rule (organization-wide or of a resource group) maps it
    /// unless unmapped members have a role.
    package func admitsLogin(_ org: GatewayConfiguration.Organization, email: String?, values: [String]) -> Refusal? {
        guard org.access.allows(email: email) else { return .emailDomainNotAllowed }
        guard org.access.refusesUnmapped else { return nil }
        let set = Set(values)
        return org.roleMapping?.rules.contains(where: { set.contains($0.value) }) == true ? nil : .accessDenied
    }

    /// Hugging Face's role mapping: the most privileged organization-wide rule the member's
    /// values match, else the role of unmapped members (nil under `default_role: none`).
    package static func organizationRole(_ values: Set<String>, mapping: GatewayConfiguration.RoleMapping,
                                         policy: AccessPolicy) -> GatewayConfiguration.Role? {
        mapping.rules.lazy.filter { $0.resourceGroup == nil && values.contains($0.value) }.map(\.role).max() ?? policy.unmappedRole(mapping)
    }

    /// The member's organization-wide role (the console's admin check): nil when refused.
    package func organizationRole(_ org: GatewayConfiguration.Organization, grant: SessionGrant) -> GatewayConfiguration.Role? {
        if case .allow(let role, _) = admit(org, grant: grant, vouchedBy: org.name, resourceGroup: nil) { return role }
        return nil
    }

    // MARK: - Parts

    /// The listed collaborator `grant` is, when `vouchedBy` may vouch for them: the entry
    /// names that organization, or names none and that organization limits its logins to the
    /// email's domain.
    private func collaborator(_ grant: SessionGrant, vouchedBy: String, in org: GatewayConfiguration.Organization) -> AccessPolicy.Collaborator? {
        guard !org.access.externalCollaborators.isEmpty, let email = grant.email?.lowercased(),
              let person = org.access.externalCollaborators.first(where: { $0.email == email }) else { return nil }
        if let named = person.organization { return named == vouchedBy ? person : nil }
        guard let domain = AccessPolicy.domain(ofEmail: email),
              organizations[vouchedBy]?.access.allowedEmailDomains.contains(domain) == true else { return nil }
        return person
    }

    /// The resource group `path` is in, read as sent and as a servlet container reads it.
    package func resourceGroup(of path: Substring, in org: GatewayConfiguration.Organization) -> Group? {
        guard !groups.isEmpty, let groups = groups[org.name] else { return nil }
        var path = path
        return path.withUTF8 { bytes in
            if let literal = Self.group(of: bytes, in: groups) { return literal }
            guard PathParameters.present(in: bytes) else { return nil }
            return PathParameters.removed(from: bytes).withUnsafeBufferPointer { Self.group(of: $0, in: groups) }
        }
    }

    private static func group(of path: UnsafeBufferPointer<UInt8>, in groups: [Group]) -> Group? {
        groups.first { $0.patterns.contains { ResourcePattern.matches($0, path: path) } }
    }
}
