import Config
import HTTPWire

/// Which organization a request path belongs to (docs/CONTRACT.md "A request for protected content"):
/// a `protected_paths` pattern whose `{org}` segment names a configured organization with
/// SAML enabled. Pure; tested without sockets.
package enum Protection {
    package enum Match: Equatable {
        case unprotected
        case organization(GatewayConfiguration.Organization)
        /// The path names different organizations as sent and with its `;` parameters
        /// removed: whichever the upstream reads, one of them is wrong (answered `400`).
        case ambiguous

        package static func == (a: Match, b: Match) -> Bool {
            switch (a, b) {
            case (.unprotected, .unprotected), (.ambiguous, .ambiguous): return true
            case (.organization(let x), .organization(let y)): return x.name == y.name
            default: return false
            }
        }
    }

    /// Matches the path as sent and, when it carries `;` parameters (raw or `%3B`), also as a
    /// servlet container reads it (Jetty, Tomcat, Spring: each segment cut at its first `;`):
    /// protected when either form is, so `/acme;/private` is acme's content whatever the
    /// upstream. Fixed pattern segments and organization names are matched without ASCII case.
    package static func match(_ path: Substring, patterns: [GatewayConfiguration.PathPattern],
                              organizations: [String: GatewayConfiguration.Organization]) -> Match {
        var path = path
        return path.withUTF8 { bytes in
            let literal = organization(of: bytes, patterns: patterns, organizations: organizations)
            guard PathParameters.present(in: bytes) else { return literal.map(Match.organization) ?? .unprotected }
            let stripped = PathParameters.removed(from: bytes)
            let servlet = stripped.withUnsafeBufferPointer { organization(of: $0, patterns: patterns, organizations: organizations) }
            switch (literal, servlet) {
            case (nil, nil): return .unprotected
            case (let one?, nil), (nil, let one?): return .organization(one)
            case (let a?, let b?): return a.name == b.name ? .organization(a) : .ambiguous
            }
        }
    }

    /// The organization of a path without `;` parameters (tests and callers that know).
    package static func organization(of path: Substring, patterns: [GatewayConfiguration.PathPattern],
                                     organizations: [String: GatewayConfiguration.Organization]) -> GatewayConfiguration.Organization? {
        if case .organization(let org) = match(path, patterns: patterns, organizations: organizations) { return org }
        return nil
    }

    private static func organization(of path: UnsafeBufferPointer<UInt8>, patterns: [GatewayConfiguration.PathPattern],
                                     organizations: [String: GatewayConfiguration.Organization]) -> GatewayConfiguration.Organization? {
        // Segments after the leading `/`, split on the byte `/` alone; walked in place (no
        // array: this runs for every request).
        let first = path.first == UInt8(ascii: "/") ? 1 : 0
        var segmentCount = 1
        for i in first..<max(first, path.count) where path[i] == UInt8(ascii: "/") { segmentCount += 1 }
        for pattern in patterns {
            let count = pattern.segments.count
            // `/a/{org}/` covers `/a/acme`, `/a/acme/` and below; `/a/{org}` only `/a/acme`.
            guard segmentCount >= count else { continue }
            if !pattern.coversSubtree {
                guard segmentCount == count else { continue }
            }
            var org: Range<Int>?
            var matched = true
            var start = first
            for expected in pattern.segments {
                var end = start
                while end < path.count && path[end] != UInt8(ascii: "/") { end += 1 }
                if let expected {
                    if !equalsIgnoringASCIICase(path[start..<end], expected.utf8) { matched = false; break }
                } else {
                    org = start..<end
                }
                start = end + 1
            }
            // Names are matched without case (configuration refuses names that differ only in
            // case), so `/ACME/x` is acme's content for an upstream that ignores case.
            guard matched, let range = org, !range.isEmpty else { continue }
            let name = String(decoding: UnsafeBufferPointer(rebasing: path[range]), as: UTF8.self)
            guard let organization = organizations[name]
                    ?? organizations.values.first(where: { equalsIgnoringASCIICase($0.name.utf8, name.utf8) }),
                  organization.saml.enabled else { continue }
            return organization
        }
        return nil
    }

    private static func equalsIgnoringASCIICase<A: Collection, B: Collection>(_ a: A, _ b: B) -> Bool
    where A.Element == UInt8, B.Element == UInt8 {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) {
            let fx = (x >= 0x41 && x <= 0x5A) ? x | 0x20 : x
            let fy = (y >= 0x41 && y <= 0x5A) ? y | 0x20 : y
            if fx != fy { return false }
        }
        return true
    }

    /// A browser navigation: GET or HEAD whose Accept includes text/html. Everything else
    /// (API clients, git, XHR, any other method) gets the 401 JSON, never an HTML redirect.
    package static func isBrowserNavigation(method: String, accept: String?) -> Bool {
        guard method == "GET" || method == "HEAD", let accept else { return false }
        return accept.lowercased().contains("text/html")
    }

    /// `return_to` must be a path on this host; anything else becomes `/`. Refused: absolute
    /// and scheme-relative URLs (`//evil`, `/\evil`, which browsers treat alike), and control
    /// characters that could split a header.
    package static func safeReturnTo(_ value: String?) -> String {
        guard let value, value.hasPrefix("/"), !value.hasPrefix("//"), !value.hasPrefix("/\\"),
              value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }), !value.contains("\\") else { return "/" }
        return value
    }
}
