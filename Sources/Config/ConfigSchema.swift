/// Every key the configuration accepts, per mapping. The decoder refuses any other key, and
/// a test keeps `Config/REFERENCE.md` listing exactly these paths.
public enum ConfigSchema {
    static let top: Set<String> = [
        "listen", "workers", "public_url", "upstream", "upstream_timeout", "header_timeout", "body_timeout", "write_timeout", "idle_timeout",
        "shutdown_timeout", "log_format", "log_level", "access_log", "session", "clock_skew",
        "protected_paths", "unauthenticated", "organizations", "trusted_proxies", "tls", "hsts", "http2", "upstream_assertion", "store",
        "logins", "audit_retention", "token_max_ttl", "routes", "upstream_tls", "admin_listen", "tracing",
    ]
    static let tracing: Set<String> = ["otlp_endpoint", "protocol", "service_name", "sample_ratio"]
    static let route: Set<String> = ["host", "path_prefix", "upstream", "upstream_tls", "protected_paths", "organizations", "organization"]
    static let upstreamTLS: Set<String> = ["ca_file", "server_name", "client_certificate_file", "client_key_file"]
    static let upstreamAssertion: Set<String> = ["enabled", "signing_key_files", "audience", "ttl"]
    static let tls: Set<String> = ["certificate_file", "private_key_file"]
    static let logins: Set<String> = ["workers", "queue", "per_client", "total"]
    static let hsts: Set<String> = ["max_age", "include_subdomains"]
    static let http2: Set<String> = ["enabled", "max_concurrent_streams"]
    static let session: Set<String> = ["cookie_name", "secrets", "secrets_file", "ttl", "idle_timeout"]
    static let organization: Set<String> = ["name", "id", "saml", "unauthenticated", "session_ttl", "session_idle_timeout", "app_credentials", "role_mapping", "access", "managed"]
    static let saml: Set<String> = [
        "enabled", "sign_on_url", "certificate", "certificates", "certificate_file", "idp_entity_id",
        "allow_idp_initiated", "allow_sha1", "sp_certificate_file", "sp_private_key_file", "require_encrypted_assertions",
        "metadata_url", "metadata_refresh", "slo_url", "slo_revokes_tokens",
    ]
    static let roleMapping: Set<String> = ["attribute", "rules", "default_role"]
    static let rule: Set<String> = ["value", "role", "resource_group"]
    static let access: Set<String> = ["default_role", "allowed_email_domains", "enforce_roles", "external_collaborators", "sso", "resource_groups", "contact"]
    static let collaborator: Set<String> = ["email", "role", "organization"]
    static let resourceGroup: Set<String> = ["name", "paths"]

    /// Every key path, written as the reference writes them (`organizations[].saml.enabled`).
    public static var keyPaths: [String] {
        top.sorted() + session.map { "session." + $0 } + tls.map { "tls." + $0 } + hsts.map { "hsts." + $0 }
            + http2.map { "http2." + $0 } + route.map { "routes[]." + $0 }
            + upstreamTLS.map { "upstream_tls." + $0 } + upstreamTLS.map { "routes[].upstream_tls." + $0 } + upstreamAssertion.map { "upstream_assertion." + $0 } + tracing.map { "tracing." + $0 } + logins.map { "logins." + $0 } + organization.map { "organizations[]." + $0 }
            + saml.map { "organizations[].saml." + $0 } + roleMapping.map { "organizations[].role_mapping." + $0 }
            + rule.map { "organizations[].role_mapping.rules[]." + $0 } + access.map { "organizations[].access." + $0 }
            + collaborator.map { "organizations[].access.external_collaborators[]." + $0 }
            + resourceGroup.map { "organizations[].access.resource_groups[]." + $0 }
    }
}
