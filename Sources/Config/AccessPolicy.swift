import Foundation

/// An organization's access policy (docs/CONTRACT.md "Access policy"): `organizations[].access` in
/// the file, or what an org admin saves in the console. The same value, in the same JSON
/// shape, is what the store keeps and the API shows.
///
/// What each key means for security:
/// - `default_role: none`: a member no role-mapping rule maps gets nothing (their login is
///   refused, `access_denied`). A role name instead is the role of unmapped members.
/// - `allowed_email_domains`: a member's email must be in one of them (compared without
///   case, exact domain): an IdP that asserts any email cannot bring in outsiders.
/// - `enforce_roles`: `read` members may only read (`GET`, `HEAD`, `OPTIONS`).
/// - `external_collaborators`: people another configured organization's IdP vouches for,
///   let in with a role. An entry without `organization` is vouched for only by an
///   organization whose `allowed_email_domains` holds its domain, so no IdP can claim
///   someone of another company's domain.
/// - `sso: optional`: content is reachable without SSO (anonymous, with the banner).
/// - `resource_groups`: named sets of paths in the organization's content; inside one, only
///   a role-mapping rule naming the group gives a role (org admins keep theirs).
public struct AccessPolicy: Sendable, Equatable, Codable {
    public enum SSO: String, Sendable, Codable, CaseIterable { case required, optional }

    public struct Collaborator: Sendable, Equatable, Codable {
        /// Lower case.
        public var email: String
        public var role: String
        /// The organization whose IdP must vouch for them; nil: one whose allowed domains hold the email's.
        public var organization: String?

        public init(email: String, role: String = "read", organization: String? = nil) {
            self.email = email.lowercased()
            self.role = role
            self.organization = organization
        }

        enum CodingKeys: String, CodingKey { case email, role, organization }

        /// `role` may be left out (`read`).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(email: try c.decode(String.self, forKey: .email), role: try c.decodeIfPresent(String.self, forKey: .role) ?? "read",
                      organization: try c.decodeIfPresent(String.self, forKey: .organization))
        }
    }

    public struct ResourceGroup: Sendable, Equatable, Codable {
        public var name: String
        /// Path patterns: `/acme/secret-*`; `*` is any run of characters within one segment,
        /// and a pattern covers everything below the path it matches.
        public var paths: [String]

        public init(name: String, paths: [String]) {
            self.name = name
            self.paths = paths
        }
    }

    /// `none`, a role name, or nil (the role mapping's default).
    public var defaultRole: String?
    /// Lower case, without a leading `@`.
    public var allowedEmailDomains: [String]
    public var enforceRoles: Bool
    public var externalCollaborators: [Collaborator]
    public var sso: SSO
    public var resourceGroups: [ResourceGroup]
    /// Whom members should ask when refused (an address or a team name), shown on refusal pages.
    public var contact: String?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case defaultRole = "default_role", allowedEmailDomains = "allowed_email_domains", enforceRoles = "enforce_roles"
        case externalCollaborators = "external_collaborators", sso, resourceGroups = "resource_groups", contact
    }

    public init(defaultRole: String? = nil, allowedEmailDomains: [String] = [], enforceRoles: Bool = false,
                externalCollaborators: [Collaborator] = [], sso: SSO = .required, resourceGroups: [ResourceGroup] = [],
                contact: String? = nil) {
        self.defaultRole = defaultRole
        self.allowedEmailDomains = allowedEmailDomains.map { Self.domain($0) }
        self.enforceRoles = enforceRoles
        self.externalCollaborators = externalCollaborators
        self.sso = sso
        self.resourceGroups = resourceGroups
        self.contact = contact
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(defaultRole: try c.decodeIfPresent(String.self, forKey: .defaultRole),
                  allowedEmailDomains: try c.decodeIfPresent([String].self, forKey: .allowedEmailDomains) ?? [],
                  enforceRoles: try c.decodeIfPresent(Bool.self, forKey: .enforceRoles) ?? false,
                  externalCollaborators: try c.decodeIfPresent([Collaborator].self, forKey: .externalCollaborators) ?? [],
                  sso: try c.decodeIfPresent(SSO.self, forKey: .sso) ?? .required,
                  resourceGroups: try c.decodeIfPresent([ResourceGroup].self, forKey: .resourceGroups) ?? [],
                  contact: try c.decodeIfPresent(String.self, forKey: .contact))
    }

    /// No key set: every member the IdP vouches for gets in, as before policies existed.
    public static let open = AccessPolicy()

    /// `Example.COM` and `@example.com` are `example.com`.
    static func domain(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        return trimmed.hasPrefix("@") ? String(trimmed.dropFirst()) : trimmed
    }

    /// The domain of an email address, lower case; nil when it has none.
    public static func domain(ofEmail email: String) -> String? {
        guard let at = email.lastIndex(of: "@") else { return nil }
        let domain = email[email.index(after: at)...].lowercased()
        return domain.isEmpty ? nil : domain
    }

    /// Whether `email` is in one of the allowed domains (always, when none is listed).
    public func allows(email: String?) -> Bool {
        guard !allowedEmailDomains.isEmpty else { return true }
        guard let domain = email.flatMap(Self.domain(ofEmail:)) else { return false }
        return allowedEmailDomains.contains(domain)
    }

    /// Members no rule maps get no role.
    public var refusesUnmapped: Bool { defaultRole == "none" }

    /// The role of members no rule maps: this policy's, else the mapping's.
    public func unmappedRole(_ mapping: GatewayConfiguration.RoleMapping?) -> GatewayConfiguration.Role? {
        if let name = defaultRole { return GatewayConfiguration.Role(name: name) }
        return mapping?.defaultRole
    }
}

extension GatewayConfiguration.Role {
    public init?(name: String) {
        guard let role = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = role
    }
}

// MARK: - Problems

extension GatewayConfiguration {
    /// What `organization`'s policy is checked against in this configuration.
    public func accessContext(for organization: String) -> AccessPolicy.Context {
        AccessPolicy.Context(organization: organization, roleMapping: self.organization(named: organization)?.roleMapping,
                             protectedPaths: protectedPaths,
                             domainsByOrganization: Dictionary(organizations.map { ($0.name, $0.access.allowedEmailDomains) }, uniquingKeysWith: { a, _ in a }))
    }
}

extension AccessPolicy {
    /// What the policy is checked against: the rest of the configuration it refers to.
    public struct Context: Sendable {
        /// The organization the policy belongs to.
        public let organization: String
        public let roleMapping: GatewayConfiguration.RoleMapping?
        public let protectedPaths: [GatewayConfiguration.PathPattern]
        /// Every configured organization, with the email domains it limits its logins to.
        public let domainsByOrganization: [String: [String]]

        public init(organization: String, roleMapping: GatewayConfiguration.RoleMapping?, protectedPaths: [GatewayConfiguration.PathPattern],
                    domainsByOrganization: [String: [String]]) {
            self.organization = organization
            self.roleMapping = roleMapping
            self.protectedPaths = protectedPaths
            self.domainsByOrganization = domainsByOrganization
        }
    }

    /// Every problem, by field under the policy (`external_collaborators[1]`), in words an
    /// admin can act on; `ssogate check` prefixes `organizations[N].access.`, the API `access.`.
    public func problems(in context: Context) -> [SettingsProblem] {
        var out: [SettingsProblem] = []
        let roles = "read, contributor, write or admin"
        let own = context.organization
        if let name = defaultRole {
            if name != "none" && GatewayConfiguration.Role(name: name) == nil {
                out.append(.init("default_role", "must be none or \(roles)"))
            } else if name == "none" && (context.roleMapping?.rules.isEmpty ?? true) {
                out.append(.init("default_role", "none refuses every member no role_mapping rule maps, and there are no rules: add role_mapping rules first"))
            }
        }
        if allowedEmailDomains.count > 64 { out.append(.init("allowed_email_domains", "at most 64 domains")) }
        for (index, domain) in allowedEmailDomains.enumerated() where !Self.isDomain(domain) {
            out.append(.init("allowed_email_domains[\(index)]", "\"\(domain)\" is not an email domain (example.com)"))
        }
        if externalCollaborators.count > 256 { out.append(.init("external_collaborators", "at most 256 people")) }
        var seenEmails: Set<String> = []
        for (index, person) in externalCollaborators.enumerated() {
            let field = "external_collaborators[\(index)]"
            guard let domain = Self.domain(ofEmail: person.email), person.email.count <= 256, Self.isDomain(domain),
                  !person.email.hasPrefix("@") else {
                out.append(.init(field, "\"\(person.email)\" is not an email address"))
                continue
            }
            if !seenEmails.insert(person.email).inserted { out.append(.init(field, "\(person.email) is listed twice")) }
            if GatewayConfiguration.Role(name: person.role) == nil { out.append(.init("\(field).role", "\"\(person.role)\" is not a role: use \(roles)")) }
            if allowedEmailDomains.contains(domain) {
                out.append(.init(field, "\(person.email) is in this organization's own domain \(domain): members log in through its IdP, not as collaborators"))
                continue
            }
            if let vouching = person.organization {
                if vouching == own {
                    out.append(.init("\(field).organization", "must be another organization: this one's members are not its collaborators"))
                } else if context.domainsByOrganization[vouching] == nil {
                    out.append(.init("\(field).organization", "\"\(vouching)\" is not a configured organization"))
                }
            } else if !context.domainsByOrganization.contains(where: { $0.key != own && $0.value.contains(domain) }) {
                out.append(.init(field, "no other organization limits its logins to \(domain), so no IdP here can vouch for \(person.email): "
                                  + "name the organization whose members they are (organization: NAME)"))
            }
        }
        if resourceGroups.count > 64 { out.append(.init("resource_groups", "at most 64 groups")) }
        var groupNames: Set<String> = []
        for (index, group) in resourceGroups.enumerated() {
            let field = "resource_groups[\(index)]"
            if group.name.isEmpty || group.name.count > 64 || !group.name.utf8.allSatisfy(ConfigValidator.isNameByte) {
                out.append(.init("\(field).name", "must be a short name of letters, digits, '-', '_' or '.'"))
            } else if !groupNames.insert(group.name).inserted {
                out.append(.init("\(field).name", "\"\(group.name)\" names two groups"))
            }
            if group.paths.isEmpty { out.append(.init("\(field).paths", "list at least one path (/\(own)/secret-*)")) }
            for (p, text) in group.paths.enumerated() {
                if let problem = ResourcePattern.problem(text, organization: own, protectedPaths: context.protectedPaths) {
                    out.append(.init("\(field).paths[\(p)]", problem))
                }
            }
        }
        // A path may belong to one group only (as a repository to one Hugging Face resource group).
        for (i, a) in resourceGroups.enumerated() {
            for (j, b) in resourceGroups.enumerated() where j > i {
                if let (x, y) = a.paths.lazy.flatMap({ x in b.paths.lazy.map { (x, $0) } }).first(where: { ResourcePattern.overlap($0.0, $0.1) }) {
                    out.append(.init("resource_groups[\(j)].paths", "\(y) overlaps \(x) of resource_groups[\(i)] (\(a.name)): a path belongs to one group"))
                }
            }
        }
        let groupRules = context.roleMapping?.rules.compactMap(\.resourceGroup) ?? []
        for name in Set(groupRules) where !groupNames.contains(name) {
            out.append(.init("resource_groups", "role_mapping has rules for the resource group \"\(name)\", which is not defined here"))
        }
        if !resourceGroups.isEmpty && context.roleMapping == nil {
            out.append(.init("resource_groups", "need role_mapping rules that give roles on them (resource_group: NAME)"))
        }
        if let contact, contact.isEmpty || contact.count > 200 || contact.contains(where: \.isNewline) {
            out.append(.init("contact", "must be one short line: an address or a team's name"))
        }
        return out
    }

    static func isDomain(_ text: String) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return text.count <= 253 && labels.count >= 2 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { ConfigValidator.isNameByte($0) && $0 != UInt8(ascii: ".") }
        }
    }
}

/// A resource group's path pattern: literal segments and segments with `*` (any run of
/// characters within that segment), matched without ASCII case against a path's leading
/// segments, so it covers everything below what it matches.
public enum ResourcePattern {
    /// Why `text` cannot be a pattern of `organization`'s resource group, or nil.
    static func problem(_ text: String, organization: String, protectedPaths: [GatewayConfiguration.PathPattern]) -> String? {
        guard text.hasPrefix("/"), text.count <= 512 else { return "must be a path starting with / (/\(organization)/secret-*)" }
        let segments = Self.segments(text)
        if segments.isEmpty || segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." || $0.contains(where: { "?#;%\\{}".contains($0) }) }) {
            return "segments must be names, with * for any run of characters (no ?, #, ;, %, backslash, braces, . or ..)"
        }
        // Inside the organization's content: some protected path pattern, with {org} bound to
        // this organization, matches the pattern's leading literal segments.
        let covered = protectedPaths.contains { pattern in
            let count = pattern.segments.count
            guard pattern.coversSubtree ? segments.count > count : segments.count == count else { return false }
            return zip(pattern.segments, segments).allSatisfy { expected, segment in
                !segment.contains("*") && segment.lowercased() == (expected ?? organization).lowercased()
            }
        }
        return covered ? nil : "is not inside \(organization)'s content under protected_paths (/\(organization)/NAME, with * in the last segments only)"
    }

    static func segments(_ text: String) -> [Substring] {
        var parts = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if parts.last == "" { parts = parts.dropLast() }
        return Array(parts)
    }

    /// Whether some path is matched by both patterns.
    static func overlap(_ a: String, _ b: String) -> Bool {
        zip(segments(a), segments(b)).allSatisfy { x, y in globsIntersect(Array(x.lowercased().utf8), Array(y.lowercased().utf8)) }
    }

    /// Whether two `*`-globs match a common string.
    static func globsIntersect(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var memo: [Int: Bool] = [:]
        func go(_ i: Int, _ j: Int) -> Bool {
            let key = i * (b.count + 1) + j
            if let known = memo[key] { return known }
            let star = UInt8(ascii: "*")
            let result: Bool
            if i == a.count && j == b.count {
                result = true
            } else if i < a.count && a[i] == star {
                result = go(i + 1, j) || (j < b.count && go(i, j + 1))
            } else if j < b.count && b[j] == star {
                result = go(i, j + 1) || (i < a.count && go(i + 1, j))
            } else if i < a.count && j < b.count {
                result = a[i] == b[j] && go(i + 1, j + 1)
            } else {
                result = false
            }
            memo[key] = result
            return result
        }
        return go(0, 0)
    }

    /// Whether `path`'s leading segments match `pattern` (bytes compared without ASCII case).
    public static func matches(_ pattern: [[UInt8]], path: UnsafeBufferPointer<UInt8>) -> Bool {
        var start = path.first == UInt8(ascii: "/") ? 1 : 0
        for segment in pattern {
            guard start <= path.count else { return false }
            var end = start
            while end < path.count && path[end] != UInt8(ascii: "/") { end += 1 }
            if !glob(segment, UnsafeBufferPointer(rebasing: path[start..<end])) { return false }
            start = end + 1
        }
        return true
    }

    /// A `*`-glob against one segment, iteratively (the usual backtrack to the last star).
    static func glob(_ pattern: [UInt8], _ text: UnsafeBufferPointer<UInt8>) -> Bool {
        var p = 0, t = 0, starP = -1, starT = 0
        func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
        while t < text.count {
            if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                starP = p; starT = t; p += 1
            } else if p < pattern.count && lower(pattern[p]) == lower(text[t]) {
                p += 1; t += 1
            } else if starP >= 0 {
                p = starP + 1; starT += 1; t = starT
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    /// A pattern as the matcher takes it: segments as lower-case bytes.
    public static func compiled(_ text: String) -> [[UInt8]] {
        segments(text).map { Array($0.lowercased().utf8) }
    }
}
