import Foundation

/// Organizations: their SAML settings and role mapping (ConfigValidator, stage 2).
extension ConfigValidator {
    mutating func organization(_ org: RawConfig.RawOrganization, at path: String,
                                       defaultMode: GatewayConfiguration.UnauthenticatedMode?,
                                       defaultTTL: Duration?, defaultIdle: Duration?) -> ValidatedConfig.Organization? {
        let before = issues.count
        if let name = org.name {
            let allowed = name.utf8.allSatisfy { Self.isNameByte($0) } && !name.hasPrefix(".") && !name.isEmpty
            if !allowed {
                report("\(path).name", "must be a URL path segment of letters, digits, '-', '_' or '.', not starting with '.'")
            } else if Self.reservedNames.contains(name.lowercased()) {
                report("\(path).name", "\"\(name)\" is reserved for the gateway's own URLs")
            }
        } else {
            required("\(path).name", "is required")
        }
        let mode = oneOf(org.unauthenticated, default: defaultMode ?? .banner, at: "\(path).unauthenticated",
                         GatewayConfiguration.UnauthenticatedMode.init(rawValue:), "banner, redirect")
        let ttl = duration(org.sessionTTL, default: defaultTTL ?? .seconds(8 * 3600), at: "\(path).session_ttl")
        let idleTimeout = idle(org.sessionIdleTimeout, default: defaultIdle, at: "\(path).session_idle_timeout")
        let appCredentials = oneOf(org.appCredentials, default: .refuse, at: "\(path).app_credentials",
                                   GatewayConfiguration.AppCredentials.init(rawValue:), "refuse, pass")
        let managed = oneOf(org.managed, default: .file, at: "\(path).managed", GatewayConfiguration.Management.init(rawValue:), "file, console")
        // Managed in the console, the file's saml section only seeds the first settings:
        // it may be absent or partial (the org admin pastes the rest).
        let console = managed == .console
        let saml = console ? self.saml(org.saml ?? RawConfig.RawSAML(), at: "\(path).saml", seedOnly: true)
            : org.saml.flatMap { self.saml($0, at: "\(path).saml", seedOnly: false) }
        if org.saml == nil && !console { required("\(path).saml", "is required (or managed: console, where an org admin sets it up)") }
        let roleMapping = org.roleMapping.flatMap { self.roleMapping($0, at: "\(path).role_mapping") }
        guard issues.count == before, let name = org.name, let mode, let ttl, let saml, let managed, let idleTimeout, let appCredentials else { return nil }
        return .init(keyPath: path, name: name, id: org.id, saml: saml, unauthenticated: mode, sessionTTL: ttl, sessionIdleTimeout: idleTimeout, appCredentials: appCredentials, roleMapping: roleMapping,
                     access: org.access ?? .open, managed: managed)
    }

    /// `seedOnly`: the organization is managed in the console, so the IdP's URL and
    /// certificate may be missing (they are pasted there), but not `enabled: true` without them.
    mutating func saml(_ s: RawConfig.RawSAML, at path: String, seedOnly: Bool) -> ValidatedConfig.SAML? {
        let before = issues.count
        // With metadata_url the IdP's metadata supplies the SSO URL and certificates; the
        // static ones, when given too, stay in force beside it.
        let fromMetadata = s.metadataURL != nil || (seedOnly && s.enabled != true)
        if seedOnly, s.metadataURL != nil {
            report("\(path).metadata_url", "is not offered for an organization managed in the console (paste the certificate there)")
        }
        if let url = s.metadataURL, !Self.isIdPURL(url) {
            report("\(path).metadata_url", "must be an absolute https URL (the IdP's metadata; http only for a loopback IdP)")
        }
        let refresh = duration(s.metadataRefresh, default: .seconds(3600), at: "\(path).metadata_refresh")
        if let url = s.signOnURL {
            if !Self.isIdPURL(url) {
                report("\(path).sign_on_url", "must be an absolute https URL (the IdP's Single Sign-On URL; http only for a loopback IdP)")
            }
        } else if !fromMetadata {
            required("\(path).sign_on_url", "is required (the IdP's Single Sign-On URL), unless metadata_url gives it")
        }
        if let url = s.sloURL, !Self.isIdPURL(url) {
            report("\(path).slo_url", "must be an absolute https URL (the IdP's Single Logout URL; http only for a loopback IdP)")
        }
        var sources: [(keyPath: String, source: MaterialSource)] = []
        let forms = [s.certificate != nil, s.certificates != nil, s.certificateFile != nil].filter { $0 }.count
        if forms == 0 {
            if !fromMetadata {
                required("\(path).certificate", "is required (the IdP's X.509 signing certificate, PEM): give certificate, certificates or certificate_file, or metadata_url")
            }
        } else if forms > 1 {
            report(path, "give only one of certificate, certificates, certificate_file")
        } else if let one = s.certificate {
            if let value = resolveEnv(one, at: "\(path).certificate") { sources.append(("\(path).certificate", .inline(value))) }
        } else if let many = s.certificates {
            if many.isEmpty { report("\(path).certificates", "must hold at least one certificate") }
            for (index, text) in many.enumerated() {
                let p = "\(path).certificates[\(index)]"
                if let value = resolveEnv(text, at: p) { sources.append((p, .inline(value))) }
            }
        } else if let file = s.certificateFile, let checked = filePath(file, at: "\(path).certificate_file") {
            sources.append(("\(path).certificate_file", .file(checked)))
        }
        switch (s.spCertificateFile, s.spPrivateKeyFile) {
        case (.some, nil): report("\(path).sp_private_key_file", "is required with sp_certificate_file (the SP key pair goes together)")
        case (nil, .some): report("\(path).sp_certificate_file", "is required with sp_private_key_file (the SP key pair goes together)")
        case (let cert?, let key?):
            _ = filePath(cert, at: "\(path).sp_certificate_file")
            _ = filePath(key, at: "\(path).sp_private_key_file")
        case (nil, nil):
            if s.requireEncryptedAssertions == true {
                report("\(path).require_encrypted_assertions", "needs sp_certificate_file and sp_private_key_file: the IdP encrypts to the SP's certificate")
            }
        }
        guard issues.count == before, let refresh else { return nil }
        return .init(enabled: s.enabled ?? false, signOnURL: s.signOnURL, certificateSources: sources,
                     idpEntityID: s.idpEntityID, allowIdPInitiated: s.allowIdPInitiated ?? false,
                     allowSHA1: s.allowSHA1 ?? false, spCertificateFile: s.spCertificateFile,
                     spPrivateKeyFile: s.spPrivateKeyFile, requireEncryptedAssertions: s.requireEncryptedAssertions ?? false,
                     metadataURL: s.metadataURL, metadataRefresh: refresh, sloURL: s.sloURL,
                     sloRevokesTokens: s.sloRevokesTokens ?? false)
    }

    /// An IdP address: absolute https, or plain http to a loopback IdP (development).
    static func isIdPURL(_ url: String) -> Bool {
        let c = URLComponents(string: url)
        let scheme = c?.scheme?.lowercased()
        let host = c?.host?.lowercased() ?? ""
        let loopback = host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
        return c != nil && !host.isEmpty && c?.fragment == nil && (scheme == "https" || (scheme == "http" && loopback))
    }

    mutating func roleMapping(_ m: RawConfig.RawRoleMapping, at path: String) -> GatewayConfiguration.RoleMapping? {
        let before = issues.count
        func role(_ text: String?, at p: String) -> GatewayConfiguration.Role? {
            guard let text else { return nil }
            guard let r = GatewayConfiguration.Role.allCases.first(where: { $0.name == text }) else {
                report(p, "must be one of read, contributor, write, admin")
                return nil
            }
            return r
        }
        if m.attribute == nil { required("\(path).attribute", "is required (the SAML attribute holding groups)") }
        var rules: [GatewayConfiguration.RoleMapping.Rule] = []
        for (index, rule) in m.rules.enumerated() {
            let p = "\(path).rules[\(index)]"
            if rule.value == nil { required("\(p).value", "is required") }
            if rule.role == nil { required("\(p).role", "is required") }
            if let value = rule.value, let r = role(rule.role, at: "\(p).role") {
                rules.append(.init(value: value, role: r, resourceGroup: rule.resourceGroup))
            }
        }
        let defaultRole = m.defaultRole == nil ? .read : role(m.defaultRole, at: "\(path).default_role")
        guard issues.count == before, let attribute = m.attribute, let defaultRole else { return nil }
        return .init(attribute: attribute, rules: rules, defaultRole: defaultRole)
    }
}
