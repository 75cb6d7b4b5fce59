import Config
import HTTPWire

/// What protects the paths of one application behind the gateway: the top-level
/// `protected_paths` over every organization, or a route's own (`routes[]`), or a whole-host
/// route's one organization (every path is its content). Built once per flow.
package struct RouteScope: Sendable {
    let patterns: [GatewayConfiguration.PathPattern]
    let organizations: [String: GatewayConfiguration.Organization]
    /// A whole-host route's organization: protected whether or not its SSO is enabled (with
    /// SSO off nobody gets in: an application that relies on the gateway alone stays closed).
    let wholeHost: GatewayConfiguration.Organization?

    package init(patterns: [GatewayConfiguration.PathPattern], organizations: [String: GatewayConfiguration.Organization],
                 wholeHost: GatewayConfiguration.Organization? = nil) {
        self.patterns = patterns
        self.organizations = organizations
        self.wholeHost = wholeHost
    }

    /// The organization whose content `path` is, on this route.
    func match(_ path: Substring) -> Protection.Match {
        if let wholeHost { return .organization(wholeHost) }
        return Protection.match(path, patterns: patterns, organizations: organizations)
    }

    /// The scopes of a configuration's routes, in its order.
    static func routes(of configuration: GatewayConfiguration, organizations: [String: GatewayConfiguration.Organization]) -> [RouteScope] {
        configuration.routes.map { route in
            RouteScope(patterns: route.protectedPaths, organizations: organizations.filter { route.organizations.contains($0.key) },
                       wholeHost: route.organization.flatMap { organizations[$0] })
        }
    }
}

/// Which route a request takes (`routes[]`): among the routes whose host matches (an exact
/// name before `*.domain`, before any host) the one with the longest path prefix, compared
/// without ASCII case; nil: the top-level `upstream`. Pure; built once per runtime.
package struct Router: Sendable {
    private struct Entry: Sendable {
        let index: Int
        let host: String?
        let wildcard: Bool
        /// Lower case, with a trailing `/` unless it is `/`.
        let prefix: [UInt8]
    }

    private let entries: [Entry]

    package init(_ routes: [GatewayConfiguration.Route]) {
        entries = routes.enumerated().map { index, route in
            let wildcard = route.host?.hasPrefix("*.") ?? false
            var prefix = Array(route.pathPrefix.lowercased().utf8)
            if prefix.last != UInt8(ascii: "/") { prefix.append(UInt8(ascii: "/")) }
            return Entry(index: index, host: wildcard ? route.host.map { String($0.dropFirst(1)) } : route.host, wildcard: wildcard, prefix: prefix)
        }
    }

    package var isEmpty: Bool { entries.isEmpty }

    /// The route of a request for `path` with the `Host` field `host`.
    package func route(host: String?, path: Substring) -> Int? {
        guard !entries.isEmpty else { return nil }
        let name = host.map(Self.hostName)
        var best: (rank: Int, length: Int, index: Int)?
        for entry in entries {
            let rank: Int
            if let wanted = entry.host {
                guard let name else { continue }
                if entry.wildcard {
                    guard name.hasSuffix(wanted), name.count > wanted.count else { continue }
                    rank = 1
                } else {
                    guard name == wanted else { continue }
                    rank = 2
                }
            } else {
                rank = 0
            }
            guard Self.starts(path, with: entry.prefix) else { continue }
            if best.map({ (rank, entry.prefix.count) > ($0.rank, $0.length) }) ?? true {
                best = (rank, entry.prefix.count, entry.index)
            }
        }
        return best?.index
    }

    /// `Host: App.Example.com:8443` → `app.example.com`; `[::1]:80` → `[::1]`.
    static func hostName(_ field: String) -> String {
        let lower = field.lowercased()
        if lower.hasPrefix("["), let close = lower.firstIndex(of: "]") { return String(lower[...close]) }
        return lower.split(separator: ":", maxSplits: 1).first.map(String.init) ?? lower
    }

    /// `/api/x` and `/api` start with `/api/`; `/apix` does not.
    static func starts(_ path: Substring, with prefix: [UInt8]) -> Bool {
        let bytes = path.utf8
        if prefix == [UInt8(ascii: "/")] { return true }
        var i = bytes.startIndex
        for (n, expected) in prefix.enumerated() {
            guard i != bytes.endIndex else { return n == prefix.count - 1 }   // `/api` for `/api/`
            let b = bytes[i]
            if (b >= 0x41 && b <= 0x5A ? b | 0x20 : b) != expected { return false }
            i = bytes.index(after: i)
        }
        return true
    }
}
