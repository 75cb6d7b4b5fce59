import Foundation

/// Where requests go: the upstream URL, its TLS, and `routes` (ConfigValidator, stage 2).
extension ConfigValidator {
    mutating func upstreamEndpoint(_ text: String?, at key: String = "upstream") -> GatewayConfiguration.Endpoint? {
        guard let text else {
            required(key, key == "upstream" ? "is required (the protected application, \"http://127.0.0.1:9000\"; with routes, where the requests no route matches go)"
                : "is required (\"http://app.internal:9000\")")
            return nil
        }
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
              let host = url.host, !host.isEmpty else {
            report(key, "must be an absolute URL (\"http://127.0.0.1:9000\")")
            return nil
        }
        guard scheme == "http" || scheme == "https" else {
            report(key, "must be http:// or https://")
            return nil
        }
        guard url.path.isEmpty || url.path == "/", url.query == nil, url.fragment == nil, url.user == nil else {
            report(key, "must not have a path, query, fragment or user; requests keep their own path")
            return nil
        }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else {
            report(key, "port out of range")
            return nil
        }
        return .init(host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: port, secure: scheme == "https")
    }

    /// `upstream_tls` of an `https://` upstream: checked here, its files read by the loader.
    mutating func upstreamTLS(_ raw: RawConfig.RawUpstreamTLS?, for upstream: GatewayConfiguration.Endpoint?,
                                      at path: String) -> UpstreamTLSFiles? {
        guard let upstream, upstream.secure else {
            if raw != nil, upstream != nil { report(path, "applies to an https:// upstream only") }
            return nil
        }
        guard let raw else { return UpstreamTLSFiles(caFile: nil, serverName: nil, clientCertificateFile: nil, clientKeyFile: nil) }
        if let name = raw.serverName, !Self.isRouteHost(name.lowercased()) || name.hasPrefix("*.") {
            report("\(path).server_name", "must be the host name the upstream's certificate names (\"app.internal\")")
        }
        switch (raw.clientCertificateFile, raw.clientKeyFile) {
        case (.some, nil): report("\(path).client_key_file", "is required with client_certificate_file")
        case (nil, .some): report("\(path).client_certificate_file", "is required with client_key_file")
        default: break
        }
        return UpstreamTLSFiles(caFile: raw.caFile.flatMap { filePath($0, at: "\(path).ca_file") }, serverName: raw.serverName,
                                clientCertificateFile: raw.clientCertificateFile.flatMap { filePath($0, at: "\(path).client_certificate_file") },
                                clientKeyFile: raw.clientKeyFile.flatMap { filePath($0, at: "\(path).client_key_file") })
    }

    /// `routes`: each with an upstream, a host (or any), a path prefix, and what protects it:
    /// its own `protected_paths` over some organizations, or one whole-host organization.
    /// Two routes for the same host and prefix are an error (the second would never be used).
    mutating func routes(_ raw: [RawConfig.RawRoute], organizations: [ValidatedConfig.Organization],
                                 defaultPatterns: [GatewayConfiguration.PathPattern]) -> [(GatewayConfiguration.Route, UpstreamTLSFiles?)] {
        let names = Set(organizations.map(\.name))
        var out: [(GatewayConfiguration.Route, UpstreamTLSFiles?)] = []
        var seen: [String: Int] = [:]
        for (index, r) in raw.enumerated() {
            let path = "routes[\(index)]"
            let before = issues.count
            let host = r.host.map { $0.lowercased() }
            if let host, !Self.isRouteHost(host) {
                report("\(path).host", "must be a host name (\"app.example.com\", or \"*.example.com\" for its subdomains), without scheme or port")
            }
            let prefix = r.pathPrefix ?? "/"
            if !prefix.hasPrefix("/") || prefix.contains(where: { "?#%;\\".contains($0) }) || prefix.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) {
                report("\(path).path_prefix", "must be a path starting with / (no ?, #, %, ;, backslash, . or .. segments)")
            }
            let upstream = upstreamEndpoint(r.upstream, at: "\(path).upstream")
            let tls = upstreamTLS(r.upstreamTLS, for: upstream, at: "\(path).upstream_tls")
            var patterns: [GatewayConfiguration.PathPattern] = []
            for (p, text) in (r.protectedPaths ?? []).enumerated() {
                if let pattern = pathPattern(text, at: "\(path).protected_paths[\(p)]") { patterns.append(pattern) }
            }
            if r.protectedPaths == nil { patterns = defaultPatterns }
            for (o, name) in (r.organizations ?? []).enumerated() where !names.contains(name) {
                report("\(path).organizations[\(o)]", "\"\(name)\" is not a configured organization")
            }
            if let whole = r.organization {
                if !names.contains(whole) { report("\(path).organization", "\"\(whole)\" is not a configured organization") }
                if r.protectedPaths != nil || r.organizations != nil {
                    report("\(path).organization", "a whole-host route belongs to one organization: give organization, or protected_paths and organizations, not both")
                }
            }
            let key = (host ?? "*any*") + " " + (prefix.hasSuffix("/") || prefix == "/" ? prefix : prefix + "/")
            if let first = seen[key] {
                report(path, "routes[\(first)] already takes host \(host ?? "(any)") and path_prefix \(prefix): this route would never be used")
            } else {
                seen[key] = index
            }
            guard issues.count == before, let upstream else { continue }
            out.append((.init(host: host, pathPrefix: prefix, upstream: upstream, upstreamTLS: nil,
                              protectedPaths: r.organization == nil ? patterns : [],
                              organizations: r.organization.map { [$0] } ?? r.organizations ?? organizations.map(\.name),
                              organization: r.organization), tls))
        }
        return out
    }

    /// `app.example.com`, `*.example.com`, `localhost`, an IPv4 address.
    static func isRouteHost(_ host: String) -> Bool {
        let name = host.hasPrefix("*.") ? String(host.dropFirst(2)) : host
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        return !name.isEmpty && name.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.utf8.allSatisfy { isNameByte($0) && $0 != UInt8(ascii: ".") && $0 != UInt8(ascii: "_") }
        }
    }
}
