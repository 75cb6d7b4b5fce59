import Config

/// Which organization a request path belongs to (SPEC "A request for protected content"):
/// a `protected_paths` pattern whose `{org}` segment names a configured organization with
/// SAML enabled. Pure; tested without sockets.
enum Protection {
    static func organization(of path: Substring, patterns: [GatewayConfiguration.PathPattern],
                             organizations: [String: GatewayConfiguration.Organization]) -> GatewayConfiguration.Organization? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        for pattern in patterns {
            let count = pattern.segments.count
            // `/a/{org}/` covers `/a/acme`, `/a/acme/` and below; `/a/{org}` only `/a/acme`.
            guard segments.count >= count else { continue }
            if !pattern.coversSubtree {
                guard segments.count == count else { continue }
            }
            var org: Substring?
            var matched = true
            for (index, expected) in pattern.segments.enumerated() {
                let actual = segments[segments.startIndex + index]
                if let expected {
                    if actual != expected { matched = false; break }
                } else {
                    org = actual
                }
            }
            // Names are matched without case (configuration refuses names that differ only in
            // case), so `/ACME/x` is acme's content for an upstream that ignores case.
            guard matched, let name = org,
                  let organization = organizations[String(name)] ?? organizations.values.first(where: { $0.name.lowercased() == name.lowercased() }),
                  organization.saml.enabled else { continue }
            return organization
        }
        return nil
    }

    /// A browser navigation: GET or HEAD whose Accept includes text/html. Everything else
    /// (API clients, git, XHR, any other method) gets the 401 JSON, never an HTML redirect.
    static func isBrowserNavigation(method: String, accept: String?) -> Bool {
        guard method == "GET" || method == "HEAD", let accept else { return false }
        return accept.lowercased().contains("text/html")
    }

    /// `return_to` must be a path on this host; anything else becomes `/`. Refused: absolute
    /// and scheme-relative URLs (`//evil`, `/\evil`, which browsers treat alike), and control
    /// characters that could split a header.
    static func safeReturnTo(_ value: String?) -> String {
        guard let value, value.hasPrefix("/"), !value.hasPrefix("//"), !value.hasPrefix("/\\"),
              value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }), !value.contains("\\") else { return "/" }
        return value
    }

    /// The role of Hugging Face's SSO role mapping: the most privileged matching rule wins;
    /// `default_role` when none matches.
    static func role(for attributes: [String: [String]], mapping: GatewayConfiguration.RoleMapping) -> GatewayConfiguration.Role {
        let values = Set(attributes[mapping.attribute] ?? [])
        return mapping.rules.filter { values.contains($0.value) }.map(\.role).max() ?? mapping.defaultRole
    }
}
