import Yams

/// Stage 1 of 4: the configuration as written, with only YAML shapes checked.
/// Every key the file may hold is declared here, once; each is documented in
/// `Config/ssogate.example.yaml`.
struct RawConfig {
    var listen: String?
    var adminListen: String?
    var workers: Int?
    var publicURL: String?
    var upstream: String?
    var upstreamTimeout: String?
    var headerTimeout: String?
    var bodyTimeout: String?
    var writeTimeout: String?
    var idleTimeout: String?
    var shutdownTimeout: String?
    var logFormat: String?
    var logLevel: String?
    var accessLog: Bool?
    var session = RawSession()
    var clockSkew: String?
    var protectedPaths: [String]?
    var unauthenticated: String?
    var organizations: [RawOrganization] = []
    var trustedProxies: [String]?
    var tls: RawTLS?
    var hsts: RawHSTS?
    var http2: RawHTTP2?
    var upstreamAssertion: RawUpstreamAssertion?
    var tracing: RawTracing?
    var store: String?
    var logins: RawLogins?
    var auditRetention: String?
    var tokenMaxTTL: String?
    var routes: [RawRoute] = []
    var upstreamTLS: RawUpstreamTLS?

    struct RawUpstreamTLS {
        var caFile: String?
        var serverName: String?
        var clientCertificateFile: String?
        var clientKeyFile: String?
    }

    struct RawRoute {
        var host: String?
        var pathPrefix: String?
        var upstream: String?
        var protectedPaths: [String]?
        var organizations: [String]?
        var organization: String?
        var upstreamTLS: RawUpstreamTLS?
    }

    struct RawLogins {
        var workers: Int?
        var queue: Int?
        var perClient: String?
        var total: String?
    }

    struct RawTracing {
        var otlpEndpoint: String?
        var protocolName: String?
        var serviceName: String?
        /// As written: a number, read by the validator.
        var sampleRatio: String?
    }

    struct RawUpstreamAssertion {
        var enabled: Bool?
        var signingKeyFiles: [String]?
        var audience: String?
        var ttl: String?
    }

    struct RawTLS {
        var certificateFile: String?
        var privateKeyFile: String?
    }

    struct RawHSTS {
        var maxAge: String?
        var includeSubdomains: Bool?
    }

    struct RawHTTP2 {
        var enabled: Bool?
        var maxConcurrentStreams: Int?
    }

    struct RawSession {
        var cookieName: String?
        var secrets: [String]?
        var secretsFile: String?
        var ttl: String?
        var idleTimeout: String?
    }

    struct RawOrganization {
        var name: String?
        var id: String?
        var saml: RawSAML?
        var unauthenticated: String?
        var sessionTTL: String?
        var sessionIdleTimeout: String?
        var appCredentials: String?
        var roleMapping: RawRoleMapping?
        var access: AccessPolicy?
        var managed: String?
    }

    struct RawSAML {
        var enabled: Bool?
        var signOnURL: String?
        var certificate: String?
        var certificates: [String]?
        var certificateFile: String?
        var idpEntityID: String?
        var allowIdPInitiated: Bool?
        var allowSHA1: Bool?
        var spCertificateFile: String?
        var spPrivateKeyFile: String?
        var requireEncryptedAssertions: Bool?
        var metadataURL: String?
        var metadataRefresh: String?
        var sloURL: String?
        var sloRevokesTokens: Bool?
    }

    struct RawRoleMapping {
        var attribute: String?
        var rules: [(value: String?, role: String?, resourceGroup: String?)] = []
        var defaultRole: String?
    }
}

extension RawConfig {
    /// Decodes YAML text. Unknown keys, duplicate keys and wrong shapes are issues.
    /// The third value lists key paths already reported, so validation does not add a
    /// second "is required" for a key that was present but malformed. `nil` when the text
    /// is not YAML at all: validation must not run then.
    static func decode(yaml text: String) -> (RawConfig, [ConfigIssue], Set<String>?) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            return (RawConfig(), [ConfigIssue("", syntaxMessage(error))], nil)
        }
        guard let root else { return (RawConfig(), [ConfigIssue("", "the file is empty")], nil) }
        var reader = YAMLReader()
        var raw = RawConfig()
        let top = reader.mapping(root, at: "", keys: ConfigSchema.top) ?? [:]
        raw.listen = reader.string(top["listen"], at: "listen")
        raw.adminListen = reader.string(top["admin_listen"], at: "admin_listen")
        raw.workers = reader.int(top["workers"], at: "workers")
        raw.publicURL = reader.string(top["public_url"], at: "public_url")
        raw.upstream = reader.string(top["upstream"], at: "upstream")
        raw.upstreamTLS = decodeUpstreamTLS(top["upstream_tls"], at: "upstream_tls", &reader)
        for (index, node) in (reader.sequence(top["routes"], at: "routes") ?? []).enumerated() {
            let path = "routes[\(index)]"
            var route = RawRoute()
            if let map = reader.mapping(node, at: path, keys: ConfigSchema.route) {
                route.host = reader.string(map["host"], at: "\(path).host")
                route.pathPrefix = reader.string(map["path_prefix"], at: "\(path).path_prefix")
                route.upstream = reader.string(map["upstream"], at: "\(path).upstream")
                route.protectedPaths = reader.strings(map["protected_paths"], at: "\(path).protected_paths")
                route.organizations = reader.strings(map["organizations"], at: "\(path).organizations")
                route.organization = reader.string(map["organization"], at: "\(path).organization")
                route.upstreamTLS = decodeUpstreamTLS(map["upstream_tls"], at: "\(path).upstream_tls", &reader)
            }
            raw.routes.append(route)
        }
        raw.upstreamTimeout = reader.string(top["upstream_timeout"], at: "upstream_timeout")
        raw.headerTimeout = reader.string(top["header_timeout"], at: "header_timeout")
        raw.bodyTimeout = reader.string(top["body_timeout"], at: "body_timeout")
        raw.writeTimeout = reader.string(top["write_timeout"], at: "write_timeout")
        raw.idleTimeout = reader.string(top["idle_timeout"], at: "idle_timeout")
        raw.shutdownTimeout = reader.string(top["shutdown_timeout"], at: "shutdown_timeout")
        raw.logFormat = reader.string(top["log_format"], at: "log_format")
        raw.logLevel = reader.string(top["log_level"], at: "log_level")
        raw.accessLog = reader.bool(top["access_log"], at: "access_log")
        raw.clockSkew = reader.string(top["clock_skew"], at: "clock_skew")
        raw.protectedPaths = reader.strings(top["protected_paths"], at: "protected_paths")
        raw.unauthenticated = reader.string(top["unauthenticated"], at: "unauthenticated")
        raw.trustedProxies = reader.strings(top["trusted_proxies"], at: "trusted_proxies")
        raw.store = reader.string(top["store"], at: "store")

        if let session = reader.mapping(top["session"], at: "session",
                                        keys: ConfigSchema.session) {
            raw.session.cookieName = reader.string(session["cookie_name"], at: "session.cookie_name")
            raw.session.secrets = reader.strings(session["secrets"], at: "session.secrets")
            raw.session.secretsFile = reader.string(session["secrets_file"], at: "session.secrets_file")
            raw.session.ttl = reader.string(session["ttl"], at: "session.ttl")
            raw.session.idleTimeout = reader.string(session["idle_timeout"], at: "session.idle_timeout")
        }

        if let tls = reader.mapping(top["tls"], at: "tls", keys: ConfigSchema.tls) {
            raw.tls = RawTLS(certificateFile: reader.string(tls["certificate_file"], at: "tls.certificate_file"),
                             privateKeyFile: reader.string(tls["private_key_file"], at: "tls.private_key_file"))
        }
        if let hsts = reader.mapping(top["hsts"], at: "hsts", keys: ConfigSchema.hsts) {
            raw.hsts = RawHSTS(maxAge: reader.string(hsts["max_age"], at: "hsts.max_age"),
                               includeSubdomains: reader.bool(hsts["include_subdomains"], at: "hsts.include_subdomains"))
        }
        if let http2 = reader.mapping(top["http2"], at: "http2", keys: ConfigSchema.http2) {
            raw.http2 = RawHTTP2(enabled: reader.bool(http2["enabled"], at: "http2.enabled"),
                                 maxConcurrentStreams: reader.int(http2["max_concurrent_streams"], at: "http2.max_concurrent_streams"))
        }

        if let assertion = reader.mapping(top["upstream_assertion"], at: "upstream_assertion", keys: ConfigSchema.upstreamAssertion) {
            raw.upstreamAssertion = RawUpstreamAssertion(
                enabled: reader.bool(assertion["enabled"], at: "upstream_assertion.enabled"),
                signingKeyFiles: reader.strings(assertion["signing_key_files"], at: "upstream_assertion.signing_key_files"),
                audience: reader.string(assertion["audience"], at: "upstream_assertion.audience"),
                ttl: reader.string(assertion["ttl"], at: "upstream_assertion.ttl"))
        }

        if let tracing = reader.mapping(top["tracing"], at: "tracing", keys: ConfigSchema.tracing) {
            raw.tracing = RawTracing(otlpEndpoint: reader.string(tracing["otlp_endpoint"], at: "tracing.otlp_endpoint"),
                                     protocolName: reader.string(tracing["protocol"], at: "tracing.protocol"),
                                     serviceName: reader.string(tracing["service_name"], at: "tracing.service_name"),
                                     sampleRatio: reader.string(tracing["sample_ratio"], at: "tracing.sample_ratio"))
        }
        raw.auditRetention = reader.string(top["audit_retention"], at: "audit_retention")
        raw.tokenMaxTTL = reader.string(top["token_max_ttl"], at: "token_max_ttl")
        if let logins = reader.mapping(top["logins"], at: "logins", keys: ConfigSchema.logins) {
            raw.logins = RawLogins(workers: reader.int(logins["workers"], at: "logins.workers"),
                                   queue: reader.int(logins["queue"], at: "logins.queue"),
                                   perClient: reader.string(logins["per_client"], at: "logins.per_client"),
                                   total: reader.string(logins["total"], at: "logins.total"))
        }

        for (index, node) in (reader.sequence(top["organizations"], at: "organizations") ?? []).enumerated() {
            raw.organizations.append(decodeOrganization(node, at: "organizations[\(index)]", &reader))
        }
        return (raw, reader.issues, Set(reader.issues.map(\.keyPath)))
    }

    /// A YAML syntax error as one line with its position. Never the file's text: the
    /// message may be logged on a failed reload, and the file may hold secrets.
    static func syntaxMessage(_ error: Error) -> String {
        guard let yaml = error as? YamlError else { return "not valid YAML" }
        switch yaml {
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return "not valid YAML: line \(context.mark.line), column \(context.mark.column): duplicate key \(names)"
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return "not valid YAML: line \(mark.line), column \(mark.column): \(problem)"
        case .reader(let problem, let offset, _, _):
            return "not valid YAML: \(problem)" + (offset.map { " at byte \($0)" } ?? "")
        default:
            return "not valid YAML"
        }
    }

    private static func decodeUpstreamTLS(_ node: Node?, at path: String, _ reader: inout YAMLReader) -> RawUpstreamTLS? {
        guard let map = reader.mapping(node, at: path, keys: ConfigSchema.upstreamTLS) else { return nil }
        return RawUpstreamTLS(caFile: reader.string(map["ca_file"], at: "\(path).ca_file"),
                              serverName: reader.string(map["server_name"], at: "\(path).server_name"),
                              clientCertificateFile: reader.string(map["client_certificate_file"], at: "\(path).client_certificate_file"),
                              clientKeyFile: reader.string(map["client_key_file"], at: "\(path).client_key_file"))
    }

    private static func decodeOrganization(_ node: Node, at path: String, _ reader: inout YAMLReader) -> RawOrganization {
        var org = RawOrganization()
        guard let map = reader.mapping(node, at: path, keys: ConfigSchema.organization) else { return org }
        org.name = reader.string(map["name"], at: "\(path).name")
        org.id = reader.string(map["id"], at: "\(path).id")
        org.unauthenticated = reader.string(map["unauthenticated"], at: "\(path).unauthenticated")
        org.sessionTTL = reader.string(map["session_ttl"], at: "\(path).session_ttl")
        org.sessionIdleTimeout = reader.string(map["session_idle_timeout"], at: "\(path).session_idle_timeout")
        org.appCredentials = reader.string(map["app_credentials"], at: "\(path).app_credentials")
        org.managed = reader.string(map["managed"], at: "\(path).managed")

        let samlPath = "\(path).saml"
        if let saml = reader.mapping(map["saml"], at: samlPath, keys: ConfigSchema.saml) {
            var s = RawSAML()
            s.enabled = reader.bool(saml["enabled"], at: "\(samlPath).enabled")
            s.signOnURL = reader.string(saml["sign_on_url"], at: "\(samlPath).sign_on_url")
            s.sloURL = reader.string(saml["slo_url"], at: "\(samlPath).slo_url")
            s.sloRevokesTokens = reader.bool(saml["slo_revokes_tokens"], at: "\(samlPath).slo_revokes_tokens")
            s.certificate = reader.string(saml["certificate"], at: "\(samlPath).certificate")
            s.certificates = reader.strings(saml["certificates"], at: "\(samlPath).certificates")
            s.certificateFile = reader.string(saml["certificate_file"], at: "\(samlPath).certificate_file")
            s.idpEntityID = reader.string(saml["idp_entity_id"], at: "\(samlPath).idp_entity_id")
            s.allowIdPInitiated = reader.bool(saml["allow_idp_initiated"], at: "\(samlPath).allow_idp_initiated")
            s.allowSHA1 = reader.bool(saml["allow_sha1"], at: "\(samlPath).allow_sha1")
            s.spCertificateFile = reader.string(saml["sp_certificate_file"], at: "\(samlPath).sp_certificate_file")
            s.spPrivateKeyFile = reader.string(saml["sp_private_key_file"], at: "\(samlPath).sp_private_key_file")
            s.requireEncryptedAssertions = reader.bool(saml["require_encrypted_assertions"], at: "\(samlPath).require_encrypted_assertions")
            s.metadataURL = reader.string(saml["metadata_url"], at: "\(samlPath).metadata_url")
            s.metadataRefresh = reader.string(saml["metadata_refresh"], at: "\(samlPath).metadata_refresh")
            org.saml = s
        }

        let rmPath = "\(path).role_mapping"
        if let rm = reader.mapping(map["role_mapping"], at: rmPath, keys: ConfigSchema.roleMapping) {
            var mapping = RawRoleMapping()
            mapping.attribute = reader.string(rm["attribute"], at: "\(rmPath).attribute")
            mapping.defaultRole = reader.string(rm["default_role"], at: "\(rmPath).default_role")
            for (index, ruleNode) in (reader.sequence(rm["rules"], at: "\(rmPath).rules") ?? []).enumerated() {
                let rulePath = "\(rmPath).rules[\(index)]"
                if let rule = reader.mapping(ruleNode, at: rulePath, keys: ConfigSchema.rule) {
                    mapping.rules.append((reader.string(rule["value"], at: "\(rulePath).value"),
                                          reader.string(rule["role"], at: "\(rulePath).role"),
                                          reader.string(rule["resource_group"], at: "\(rulePath).resource_group")))
                }
            }
            org.roleMapping = mapping
        }
        org.access = decodeAccess(map["access"], at: "\(path).access", &reader)
        return org
    }

    /// `access:` as written; what its values mean is checked later (AccessPolicy.problems).
    private static func decodeAccess(_ node: Node?, at path: String, _ reader: inout YAMLReader) -> AccessPolicy? {
        guard let map = reader.mapping(node, at: path, keys: ConfigSchema.access) else { return nil }
        var policy = AccessPolicy()
        policy.defaultRole = reader.string(map["default_role"], at: "\(path).default_role")
        policy.allowedEmailDomains = (reader.strings(map["allowed_email_domains"], at: "\(path).allowed_email_domains") ?? []).map(AccessPolicy.domain)
        policy.enforceRoles = reader.bool(map["enforce_roles"], at: "\(path).enforce_roles") ?? false
        policy.contact = reader.string(map["contact"], at: "\(path).contact")
        if let sso = reader.string(map["sso"], at: "\(path).sso") {
            if let mode = AccessPolicy.SSO(rawValue: sso) { policy.sso = mode } else { reader.report("\(path).sso", "must be required or optional") }
        }
        for (index, item) in (reader.sequence(map["external_collaborators"], at: "\(path).external_collaborators") ?? []).enumerated() {
            let itemPath = "\(path).external_collaborators[\(index)]"
            if case .scalar = item {
                if let email = reader.string(item, at: itemPath) { policy.externalCollaborators.append(.init(email: email)) }
            } else if let entry = reader.mapping(item, at: itemPath, keys: ConfigSchema.collaborator) {
                guard let email = reader.string(entry["email"], at: "\(itemPath).email") else {
                    if entry["email"] == nil { reader.report("\(itemPath).email", "is required") }
                    continue
                }
                policy.externalCollaborators.append(.init(email: email, role: reader.string(entry["role"], at: "\(itemPath).role") ?? "read",
                                                          organization: reader.string(entry["organization"], at: "\(itemPath).organization")))
            }
        }
        for (index, item) in (reader.sequence(map["resource_groups"], at: "\(path).resource_groups") ?? []).enumerated() {
            let itemPath = "\(path).resource_groups[\(index)]"
            guard let entry = reader.mapping(item, at: itemPath, keys: ConfigSchema.resourceGroup) else { continue }
            let name = reader.string(entry["name"], at: "\(itemPath).name")
            let paths = reader.strings(entry["paths"], at: "\(itemPath).paths")
            if entry["name"] == nil { reader.report("\(itemPath).name", "is required") }
            if entry["paths"] == nil { reader.report("\(itemPath).paths", "is required") }
            if let name, let paths { policy.resourceGroups.append(.init(name: name, paths: paths)) }
        }
        return policy
    }
}
